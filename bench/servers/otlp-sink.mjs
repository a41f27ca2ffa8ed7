// An OTLP/HTTP trace receiver for the bench's tracing rows: it reads each export and
// answers 200 with an empty ExportTraceServiceResponse (an empty protobuf message is zero
// bytes), as a collector on the same host would, at the least CPU it can. It is a
// process of its own, so its CPU is not counted in highproxy's.
//   node otlp-sink.mjs <port>

import http from 'node:http'

const port = Number(process.argv[2])
let spansBytes = 0
http.createServer((req, res) => {
  if (req.method !== 'POST') { res.end('otlp sink\n'); return }
  req.on('data', c => { spansBytes += c.length })
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': '0' })
    res.end()
  })
}).listen(port, '127.0.0.1')
process.on('SIGTERM', () => { process.stderr.write(`otlp sink: ${spansBytes} bytes received\n`); process.exit(0) })
