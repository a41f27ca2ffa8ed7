// `highproxy lab`: every fault origin on loopback, a table of status → URL, until Ctrl-C.

import closeWithGrace from 'close-with-grace'
import { FAULT_NAMES, startLab } from './index.js'

export async function runLab (json: boolean): Promise<void> {
  const lab = await startLab()
  const table = (['healthy', ...FAULT_NAMES] as const).map(key => lab.origins[key]).map(o => ({
    key: o.key,
    status: o.status ?? 200,
    url: o.url,
    description: o.description,
    available: o.available,
    ...(o.reason === undefined ? {} : { reason: o.reason })
  }))
  if (json) {
    process.stdout.write(JSON.stringify(table) + '\n')
  } else {
    // Columns as wide as their longest value, two spaces apart: the 530 fault's URL is
    // longer than any other, and must not run into its description.
    const keyWidth = Math.max('key'.length, ...table.map(r => r.key.length)) + 2
    const urlWidth = Math.max('url'.length, ...table.map(r => r.url.length)) + 2
    process.stdout.write(`highproxy fault lab (Ctrl-C to stop)\n\n${'status'.padEnd(8)}${'key'.padEnd(keyWidth)}${'url'.padEnd(urlWidth)}the fault\n`)
    for (const row of table) {
      process.stdout.write(`${String(row.status).padEnd(8)}${row.key.padEnd(keyWidth)}${row.url.padEnd(urlWidth)}` +
        `${row.available ? row.description : `unavailable: ${row.reason ?? ''}`}\n`)
    }
  }
  closeWithGrace({ delay: 5000 }, lab.close)
}
