// `highproxy/fastify`: the edge's behaviour for an existing @fastify/http-proxy or
// @fastify/reply-from app, in two pieces: a dispatcher built on the edge's dialer, and
// an onError hook that answers with the edge's classification, page and failure line.
// Neither loads reply-from or http-proxy (they are the app's, peer dependencies of this
// export only); the types they are checked against are Fastify's and undici's.

export { edgeDispatcher, type EdgeDispatcherOptions } from './dispatcher.js'
export { edgeOnError, type AnyReply, type EdgeOnErrorOptions, type ReplyFromFailure } from './on-error.js'
export type { Duration } from './options.js'
export type { FailureRecord } from '../log/log.js'
