// The OTLP receiver process (otlp-receiver.mjs) from a test: start it, read what it got.

import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'

const SCRIPT = new URL('./otlp-receiver.mjs', import.meta.url).pathname

export interface ReceivedSpan {
  encoding: 'protobuf' | 'json'
  resource: Record<string, unknown>
  header: string
  traceId: string
  spanId: string
  parentSpanId: string
  name: string
  /** 2: SERVER, 3: CLIENT. */
  kind: number
  startNs: string
  endNs: string
  attributes: Record<string, any>
  /** 0 unset, 1 ok, 2 error. */
  status: { code: number, message: string }
  events: Array<{ name: string, timeNs: string, attributes: Record<string, any> }>
  links: Array<{ traceId: string, spanId: string }>
}

export const SERVER = 2
export const CLIENT = 3

export interface Receiver {
  url: string
  spans: () => Promise<ReceivedSpan[]>
  /** Polls until `enough` holds for the spans received, up to `ms`. */
  waitFor: (enough: (spans: ReceivedSpan[]) => boolean, ms?: number) => Promise<ReceivedSpan[]>
  close: () => Promise<void>
}

export async function startReceiver (args: string[] = []): Promise<Receiver> {
  const child = spawn(process.execPath, [SCRIPT, ...args], { stdio: ['pipe', 'pipe', 'inherit'] })
  const [line] = await once(child.stdout, 'data') as [Buffer]
  const { port } = JSON.parse(line.toString().split('\n')[0] as string) as { port: number }
  const url = `http://127.0.0.1:${port}`
  const spans = async (): Promise<ReceivedSpan[]> => {
    const res = await fetch(`${url}/spans`)
    return ((await res.json()) as { spans: ReceivedSpan[] }).spans
  }
  return {
    url,
    spans,
    waitFor: async (enough, ms = 8000) => {
      const until = Date.now() + ms
      for (;;) {
        const got = await spans()
        if (enough(got)) return got
        if (Date.now() > until) throw new Error(`spans not received in ${ms} ms (have ${got.length}: ${got.map(s => s.name).join(', ')})`)
        await sleep(50)
      }
    },
    close: async () => {
      if (child.exitCode !== null) return
      const exited = once(child, 'exit')
      child.stdin.end()
      child.kill()
      await exited
    }
  }
}

/** The spans of one trace. */
export const ofTrace = (spans: ReceivedSpan[], traceId: string): ReceivedSpan[] => spans.filter(s => s.traceId === traceId)
