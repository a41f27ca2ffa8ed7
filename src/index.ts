// The package's public surface: the Fastify plugin and the types at its edges.
export { edgeProxy, type EdgeProxyOptions } from './listen/plugin.js'
export { loadConfig, validate, resolve as resolveConfig, SETTINGS } from './config/load.js'
export type { Config, ConfigInput, EdgeConfig, RouteConfig, TlsConfig } from './config/schema.js'
export { classify, RULES, type Classification, type ProxyErrorType } from './status/classify.js'
export { CATALOG, type EdgeErrorEntry } from './status/catalog.js'
export type { ErrorBody } from './page/render.js'
export type { AccessRecord, FailureRecord, Timings } from './log/log.js'
export * from './status/errors.js'
