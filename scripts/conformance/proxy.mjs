// A minimal streaming reverse proxy (node:http) for the conformance harness: the cache sits in front
// of it exactly where it sits in front of a real app's handler. It forwards the method, the path and
// the request headers as the cache left them (the cache removes a client's conditions so the handler
// renders a full response), and passes the origin's status, header lines and body through untouched:
// nothing is added or rewritten, so the suite sees the origin's own fields, and a bogus
// Content-Length stays the origin's (no 500 of our making).
import http from 'node:http'

/** Hop-by-hop request fields (RFC 9110 §7.6.1): meaningful for the client's connection only. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'transfer-encoding',
  'upgrade',
])

/** Response framing is the server's business: Node re-frames the body it streams (RFC 9112 §6). */
const FRAMING = new Set(['transfer-encoding'])

/**
 * Returns an Express handler `(req, res, next) => void` proxying to `origin` (a base URL).
 * On an origin connection error it calls next() with a 502 error (`onError: 'next'`, the default),
 * as an app's proxy does (http-proxy-middleware answers 502 itself), which lets the cache answer
 * with a stale copy (RFC 9111 §4.2.4); `onError: 'drop'` destroys the client socket instead, so
 * "the origin dropped the connection" reaches the client as it is.
 */
export function reverseProxy(origin, { onError = 'next' } = {}) {
  const target = new URL(origin)
  const agent = new http.Agent({ keepAlive: true })
  return (req, res, next) => {
    const failed = () => {
      if (onError === 'next' && !res.headersSent) {
        res.removeHeader('content-length')
        next(Object.assign(new Error('origin connection failed'), { status: 502 }))
      } else req.socket.destroy()
    }
    const headers = {}
    for (const [name, value] of Object.entries(req.headers)) {
      if (!HOP_BY_HOP.has(name) && value !== undefined) headers[name] = value
    }
    const upstream = http.request({
      agent,
      host: target.hostname,
      port: target.port,
      method: req.method,
      path: req.originalUrl ?? req.url,
      headers,
    })
    // Interim responses (RFC 9110 §15.2) go straight to the client; Node can write these three.
    upstream.on('information', (info) => {
      if (res.headersSent) return
      if (info.statusCode === 100) res.writeContinue()
      else if (info.statusCode === 102) res.writeProcessing()
      else if (info.statusCode === 103) {
        const hints = {}
        for (let i = 0; i < info.rawHeaders.length; i += 2) {
          const name = info.rawHeaders[i].toLowerCase()
          const prior = hints[name]
          const value = info.rawHeaders[i + 1]
          hints[name] = prior === undefined ? value : [prior, value].flat()
        }
        res.writeEarlyHints(hints)
      }
    })
    let received
    upstream.on('response', (answer) => {
      received = answer
      // Node adds Date unless told not to: the origin's fields are passed as they are.
      res.sendDate = false
      const grouped = new Map()
      for (let i = 0; i < answer.rawHeaders.length; i += 2) {
        const name = answer.rawHeaders[i]
        if (FRAMING.has(name.toLowerCase())) continue
        const list = grouped.get(name.toLowerCase()) ?? { name, values: [] }
        list.values.push(answer.rawHeaders[i + 1])
        grouped.set(name.toLowerCase(), list)
      }
      for (const { name, values } of grouped.values())
        res.setHeader(name, values.length === 1 ? values[0] : values)
      res.statusCode = answer.statusCode
      if (answer.statusMessage) res.statusMessage = answer.statusMessage
      answer.on('error', () => req.socket.destroy())
      answer.on('aborted', () => req.socket.destroy())
      answer.pipe(res)
    })
    // Bytes past a short Content-Length make the origin socket fail once the response is parsed:
    // that response is complete and still goes out.
    upstream.on('error', () => {
      if (received === undefined) failed()
      else if (!received.complete) req.socket.destroy()
    })
    req.pipe(upstream)
    // The client went away: so does the origin request.
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy()
    })
  }
}
