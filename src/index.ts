// The package's public surface: the Fastify plugin and the types at its edges.
export { edgeProxy, type EdgeProxyOptions } from './edge/plugin.js'
export { loadConfig, validate, resolve as resolveConfig, SETTINGS } from './config/load.js'
export type { Config, ConfigInput, EdgeConfig, RouteConfig, TlsConfig } from './config/schema.js'
export { classify, errorCodes, RULES, type Classification, type Phase } from './errors/classify.js'
export { CATALOG, type EdgeErrorEntry } from './errors/catalog.js'
export type { ErrorBody } from './errors/render.js'
export type { AccessRecord, FailureRecord, Timings } from './log.js'
export * from './errors.js'
