// The `origin` label of every metric: the configured URL's host:port, the scheme's
// default port written out (http://web → web:80), so that one origin is one label value
// whichever way the config spelled it, and the label set stays bounded by the config.

const labels = new Map<string, string>()

const DEFAULT_PORT: Record<string, string> = { 'http:': '80', 'https:': '443' }

function hostPort (url: string): string {
  try {
    const u = new URL(url)
    return `${u.hostname}:${u.port === '' ? DEFAULT_PORT[u.protocol] ?? '' : u.port}`
  } catch {
    return url
  }
}

/** host:port of an origin URL; remembered, since the same few URLs come once per request. */
export function originLabel (url: string): string {
  let label = labels.get(url)
  if (label === undefined) {
    label = hostPort(url)
    labels.set(url, label)
  }
  return label
}
