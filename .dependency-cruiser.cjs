// The layers of src/ (docs/architecture.md), checked by dependency-cruiser on every test
// run (test/unit/layers.test.ts), or by hand: `npx depcruise src`.
//
// An import may only point down this list, never up or sideways:
//
//   entry points   src/*.ts: cli, cluster, lifecycle, demo, probe, index, runtime-check, node-flags, tracing
//   listen/        the listeners: the HTTP/1.1 server, the TLS front door, client refusals
//   edge/          one request
//   page/          the pages and headers the edge writes itself            ┐
//   origin/        dial, connections, transport, pools, health, conditions │ shared parts
//   cache/         Always online's store                                  │
//   log/           the lines, their schema, the stream, ray ids, durations ┘
//   config/        what may be configured, loaded and resolved             ┐ facts
//   status/        the error table, the status catalog, classification     ┘
//
// The shared parts and the facts are in the order their imports already had, made strict so
// that no two of them import each other: page/ uses only status/; origin/ times its dials
// with log/time; log/ prints the condition names, error codes and `log.fields` values it
// reads from status/ and config/; config/ throws ConfigError from status/; status/ imports
// nothing of ours. cache/ imports nothing of ours; it sits among the shared parts.
//
// Beside the layers: admin/ reads any layer (it is started by the entry points only);
// fastify/ (the `highproxy/fastify` integration) uses the shared parts and the facts, never
// edge/ or listen/; lab/ (the fault lab) is imported only by the demo, the CLI (its `lab`
// and `toxiproxy` commands) and the tests, and itself uses the shared parts and the facts.

const LAYERS = [
  ['entry', '^src/[^/]+\\.ts$'],
  ['listen', '^src/listen/'],
  ['edge', '^src/edge/'],
  ['page', '^src/page/'],
  ['origin', '^src/origin/'],
  ['cache', '^src/cache/'],
  ['log', '^src/log/'],
  ['config', '^src/config/'],
  ['status', '^src/status/']
]
const ENTRY = LAYERS[0][1]
const BESIDE = { admin: '^src/admin/', fastify: '^src/fastify/', lab: '^src/lab/' }
const SHARED_AND_FACTS = LAYERS.slice(LAYERS.findIndex(([name]) => name === 'page')).map(([, path]) => path)

/** One rule per layer: nothing in it imports a layer above it, nor admin/, fastify/ or lab/. */
const layerRules = LAYERS.slice(1).map(([name, path], i) => {
  const above = LAYERS.slice(0, i + 1).map(([, p]) => p)
  return {
    name: `layer-${name}`,
    comment: `${name}/ imports only the layers below it (${LAYERS.slice(i + 2).map(([n]) => n).join(', ') || 'none'})`,
    severity: 'error',
    from: { path },
    to: { path: [...above, BESIDE.admin, BESIDE.fastify, BESIDE.lab] }
  }
})

module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'admin-beside',
      comment: 'admin/ is started by the entry points; nothing else imports it, and it imports no entry point but tracing (the SDK started once per process) and neither lab/ nor fastify/',
      severity: 'error',
      from: { path: 'src/', pathNot: [ENTRY, BESIDE.admin] },
      to: { path: BESIDE.admin }
    },
    {
      name: 'admin-reads-down',
      severity: 'error',
      from: { path: BESIDE.admin },
      to: { path: [ENTRY, BESIDE.lab, BESIDE.fastify], pathNot: ['^src/tracing\\.ts$'] }
    },
    {
      name: 'fastify-beside',
      comment: 'highproxy/fastify uses the shared parts and the facts only: never edge/, listen/, admin/, lab/ or an entry point',
      severity: 'error',
      from: { path: BESIDE.fastify },
      to: { path: '^src/', pathNot: [BESIDE.fastify, ...SHARED_AND_FACTS] }
    },
    {
      name: 'lab-only-from-demo-cli-tests',
      comment: 'the product does not depend on its fault lab: only the demo, the CLI and the tests import lab/',
      severity: 'error',
      from: { path: '^src/', pathNot: ['^src/demo\\.ts$', '^src/cli\\.ts$', BESIDE.lab] },
      to: { path: BESIDE.lab }
    },
    {
      name: 'lab-uses-shared-parts',
      comment: 'lab/ uses the shared parts and the facts, nothing above them',
      severity: 'error',
      from: { path: BESIDE.lab },
      to: { path: '^src/', pathNot: [BESIDE.lab, ...SHARED_AND_FACTS] }
    },
    {
      name: 'no-circular',
      comment: 'no import cycle, not even through types, outside edge/ and origin/',
      severity: 'error',
      // edge/ and origin/ keep cycles of type-only imports inside themselves (an Exchange
      // holds its Attempts and each Attempt its Exchange; a pool its members' load and the
      // load its pool): they describe one object graph and run in no order. Their files
      // are still held to the runtime rule below.
      from: { path: '^src/', pathNot: ['^src/edge/', '^src/origin/'] },
      to: { circular: true }
    },
    {
      name: 'no-circular-at-runtime',
      comment: 'no cycle of imports that run (type-only imports excepted): module order never matters',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } }
    }
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' }
  }
}
