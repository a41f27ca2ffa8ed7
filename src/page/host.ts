// The host part of a Host header (or :authority): what routes match and what error
// bodies call the zone.

/** Without its port, lower case; IPv6 literals keep their brackets. */
export function hostOnly (hostHeader: string): string {
  const host = hostHeader.toLowerCase()
  if (host.startsWith('[')) {
    const end = host.indexOf(']')
    return end === -1 ? host : host.slice(0, end + 1)
  }
  const colon = host.indexOf(':')
  return colon === -1 ? host : host.slice(0, colon)
}
