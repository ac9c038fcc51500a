/**
 * Scenarios every run checks first (fast-check `examples`): shrunk counterexamples found by this
 * property, kept as regression cases.
 */
import type { RequestSpec, RouteSpec, Scenario, Step } from './scenario.js'

const route = (r: Partial<RouteSpec> = {}): RouteSpec => ({
  status: 200,
  mode: 'send',
  delayMs: 0,
  size: 80,
  ...r,
})
const get = (r: Partial<RequestSpec> = {}): RequestSpec => ({ route: 0, method: 'GET', ...r })
const batch = (...requests: RequestSpec[]): Step => ({ kind: 'batch', requests, settle: true })

export const EXAMPLES: readonly Scenario[] = [
  // A response rendered for a session cookie, without public/s-maxage, is stored and replayed to an
  // anonymous request.
  { options: {}, routes: [route()], steps: [batch(get({ cookie: 'sid=alice' })), batch(get())] },
  // A request with a session cookie is answered from an entry that did not say public/s-maxage.
  { options: {}, routes: [route()], steps: [batch(get()), batch(get({ cookie: 'sid=bob' }))] },
  // Analytics cookies do not make a request private: both are answered (no violation either way).
  {
    options: {},
    routes: [route({ cacheControl: 'public' })],
    steps: [batch(get({ cookie: 'sid=alice' })), batch(get({ cookie: '_ga=GA1.1.42' }))],
  },
  // A body shorter than its declared Content-Length is stored, and replayed as a complete response.
  { options: {}, routes: [route({ mode: 'shortLength' })], steps: [batch(get()), batch(get())] },
  // If-None-Match: * on a handler that flushes its head early, then ends.
  {
    options: {},
    routes: [route({ mode: 'flush', etag: true })],
    steps: [batch(get({ ifNoneMatch: '*' })), batch(get({ ifNoneMatch: '*' }), get())],
  },
]
