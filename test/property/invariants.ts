/**
 * What must hold for every answer and every stored entry, whatever the handlers and the traffic.
 * Each handler names its render in an `x-render` header and at the start of its body (route, render
 * number, the id of the request it rendered for, that request's Cookie and Authorization, and the
 * body's intended length), so any answer can be traced back to the request that caused it.
 */
import type { ResponseEntry } from '../../src/entry.js'
import type { Answer } from './client.js'
import type { RequestSpec, RouteSpec } from './scenario.js'

/** A request as sent: its spec, with `route` resolved to an index of the scenario's routes. */
export interface Sent extends RequestSpec {
  readonly id: string
}

export interface RenderInfo {
  readonly route: number
  readonly n: number
  readonly id: string
}

export const encodeRender = (r: RenderInfo): string => `r=${r.route};n=${r.n};q=${r.id}`

export function decodeRender(value: string | undefined): RenderInfo | undefined {
  const m = /^r=(\d+);n=(\d+);q=(q\d+)$/.exec(value ?? '')
  return m ? { route: Number(m[1]), n: Number(m[2]), id: m[3] as string } : undefined
}

/** `L000123;` + render info + padding: the whole body is 123 bytes. */
export function renderBody(r: RenderInfo, req: Sent | undefined, size: number): string {
  const info = `${encodeRender(r)};c=${encodeURIComponent(req?.cookie ?? '')};a=${encodeURIComponent(req?.authorization ?? '')};`
  const length = Math.max(size, info.length + 8)
  const head = `L${String(length).padStart(6, '0')};${info}`
  return head + '.'.repeat(length - head.length)
}

/** The intended length and render id a body announces, if it starts with a marker. */
export function bodyMarker(body: Buffer): { length: number; id: string | undefined } | undefined {
  const m = /^L(\d{6});r=\d+;n=\d+;q=(q\d+);/.exec(body.subarray(0, 64).toString('latin1'))
  return m ? { length: Number(m[1]), id: m[2] } : undefined
}

/** Analytics cookies identify nobody to the app: a request carrying only those is anonymous. */
const ANALYTICS = /^(_ga|_gid|_ga_\w+)$/

/** The cookies that make a request one visitor's, sorted; '' for none. */
export function credentialCookies(header: string | undefined): string {
  return (header ?? '')
    .split(';')
    .map((p) => p.trim())
    .filter((p) => p !== '' && !ANALYTICS.test(p.split('=')[0] ?? ''))
    .sort()
    .join('; ')
}

function directives(cacheControl: string | undefined): Set<string> {
  return new Set(
    (cacheControl ?? '')
      .split(',')
      .map((d) => d.trim().split('=')[0]?.toLowerCase() ?? '')
      .filter(Boolean),
  )
}

/**
 * The intended cookie rule: a response rendered for, or served to, a request with cookies is shared
 * only when it said `public` or `s-maxage`. RFC 9111 §3.5: a response to a request with
 * Authorization is shared only with `public`, `s-maxage` or `must-revalidate`.
 */
export function sharedFor(
  cacheControl: string | undefined,
  credential: 'cookie' | 'auth',
): boolean {
  const d = directives(cacheControl)
  return d.has('public') || d.has('s-maxage') || (credential === 'auth' && d.has('must-revalidate'))
}

const header = (a: Answer, name: string): string | undefined => a.headers.get(name)?.join(', ')

const varies = (route: RouteSpec, name: string): boolean =>
  (route.vary ?? '')
    .toLowerCase()
    .split(',')
    .map((v) => v.trim())
    .includes(name)

const conditional = (req: Sent): boolean =>
  req.ifNoneMatch !== undefined || req.ifModifiedSince !== undefined

const opaque = (tag: string): string => tag.trim().replace(/^W\//, '')

/**
 * Whether answering `to` with a response rendered for `from` is allowed. Returns the reason it is
 * not, or undefined.
 */
function sharingViolation(
  from: Sent,
  to: Sent,
  route: RouteSpec,
  cacheControl: string | undefined,
): string | undefined {
  if (from.method !== 'GET') return `shares a response rendered for a ${from.method}`
  if (from.cacheControl === 'no-store') return 'shares a response its request said no-store to'
  if (varies(route, '*')) return 'shares a response with Vary: *'
  const fromCookie = credentialCookies(from.cookie)
  const toCookie = credentialCookies(to.cookie)
  if (fromCookie !== '' && !sharedFor(cacheControl, 'cookie'))
    return `shares a response rendered for Cookie "${from.cookie}" without public/s-maxage`
  if (toCookie !== '' && !sharedFor(cacheControl, 'cookie'))
    return `answers a request with Cookie "${to.cookie}" from a response without public/s-maxage`
  if (from.authorization !== undefined && !sharedFor(cacheControl, 'auth'))
    return `shares a response rendered for Authorization "${from.authorization}"`
  if (to.authorization !== undefined && !sharedFor(cacheControl, 'auth'))
    return `answers a request with Authorization "${to.authorization}" from a stored response`
  if (varies(route, 'cookie') && fromCookie !== toCookie)
    return `Vary: Cookie, but rendered for "${from.cookie ?? ''}"`
  if (varies(route, 'accept') && from.accept !== to.accept)
    return `Vary: Accept, but rendered for Accept "${from.accept ?? ''}"`
  return undefined
}

const HIT = new Set(['HIT', 'STALE'])

/** Every violation shown by one answer. */
export function checkAnswer(
  req: Sent,
  answer: Answer,
  routes: readonly RouteSpec[],
  sent: ReadonlyMap<string, Sent>,
  boundMs: number,
): string[] {
  const out: string[] = []
  const route = routes[req.route] as RouteSpec
  if (answer.kind === 'timeout') return [`no answer within ${boundMs} ms`]
  if (answer.kind === 'closed') {
    return route.mode === 'destroy' ? [] : ['connection closed without a response']
  }
  if (answer.extra > 0)
    out.push(`${answer.extra} bytes after the message (status ${answer.status})`)
  const render = decodeRender(header(answer, 'x-render'))
  const own = render?.id === req.id
  const xCache = header(answer, 'x-cache') ?? ''
  const cacheControl = header(answer, 'cache-control')

  // RFC 9110 §15.4.5: a 304 answers a conditional GET or HEAD. A handler that answers 304 on its own
  // (a route whose status is 304) is the origin's business, not the cache's.
  if (answer.status === 304 && !own) {
    if (!conditional(req) || req.method === 'POST') out.push('304 to a request without conditions')
    else if (req.ifNoneMatch !== undefined && req.ifNoneMatch.trim() !== '*') {
      const etag = header(answer, 'etag')
      const tags = req.ifNoneMatch.split(',').map(opaque)
      if (etag === undefined || !tags.includes(opaque(etag)))
        out.push(`304 with ETag ${etag ?? '(none)'} for If-None-Match ${req.ifNoneMatch}`)
    }
  }
  const setCookie = answer.headers.get('set-cookie')
  if (setCookie !== undefined && HIT.has(xCache)) out.push(`X-Cache ${xCache} with Set-Cookie`)
  // RFC 9111 §5.2.1.7: only-if-cached never reaches the origin. A request with credentials may be
  // passed by the cache as if it were not there (a session bypass), so only anonymous ones count.
  const anonymous = req.authorization === undefined && credentialCookies(req.cookie) === ''
  if (own && req.cacheControl === 'only-if-cached' && anonymous && req.method !== 'POST')
    out.push('only-if-cached reached the handler')

  const marker = bodyMarker(answer.body)
  // A revalidated copy (RFC 9111 §4.3.4) keeps its body and takes the 304's fields: head and body
  // then come from two renders of the same route. The body's render is whose content is shared.
  const bodyFrom = marker?.id === undefined ? undefined : sent.get(marker.id)
  const freshened =
    marker?.id !== undefined &&
    render !== undefined &&
    marker.id !== render.id &&
    bodyFrom !== undefined &&
    bodyFrom.route === render.route
  if (marker !== undefined && render !== undefined && marker.id !== render.id && !freshened)
    out.push(`head from render ${render.id} but body from render ${marker.id}`)

  if (render !== undefined && !own) {
    if (setCookie !== undefined) out.push(`Set-Cookie of the render for ${render.id}`)
    if (render.route !== req.route) out.push(`answered with route ${render.route}'s render`)
    const contentId = freshened ? (marker?.id as string) : render.id
    const from = sent.get(contentId)
    const why =
      from && contentId !== req.id ? sharingViolation(from, req, route, cacheControl) : undefined
    if (why !== undefined) out.push(`answer rendered for ${contentId}: ${why}`)
    const hasBody = req.method === 'GET' && answer.status !== 204 && answer.status !== 304
    // A 206 answered from a stored 200 (RFC 9110 §14) carries the requested slice: its length is
    // what Content-Range says, checked instead of the whole-body marker.
    const partial = answer.status === 206 && req.range !== undefined
    if (partial) {
      const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(
        String(answer.headers.get('content-range')?.[0] ?? ''),
      )
      if (m === null || Number(m[2]) - Number(m[1]) + 1 !== answer.body.length || !answer.complete)
        out.push(`206 body does not match its Content-Range (${answer.body.length} bytes)`)
    } else if (
      hasBody &&
      (!answer.complete || marker === undefined || marker.length !== answer.body.length)
    )
      out.push(
        `shared body truncated: ${answer.body.length} bytes, meant ${marker?.length ?? '?'}${answer.complete ? '' : ' (incomplete framing)'}`,
      )
  } else if (own && !answer.complete && route.mode !== 'shortLength' && route.mode !== 'destroy') {
    out.push(`incomplete body (${answer.body.length} bytes)`)
  }
  return out
}

/** Every violation shown by one stored entry. */
export function checkStored(
  entry: ResponseEntry,
  routes: readonly RouteSpec[],
  sent: ReadonlyMap<string, Sent>,
): string[] {
  const out: string[] = []
  const get = (name: string): string | undefined =>
    entry.headers.find(([n]) => n === name)?.[1] ?? undefined
  if (entry.headers.some(([n]) => n === 'set-cookie')) out.push('stored Set-Cookie')
  // RFC 9111 §3: a 5xx may be stored only when it states its own lifetime (explicit freshness).
  const explicit =
    /(^|[\s,])(max-age|s-maxage)=|(^|[\s,])public\b/i.test(get('cache-control') ?? '') ||
    get('expires') !== undefined
  if (entry.status === 206 || entry.status === 304 || (entry.status >= 500 && !explicit))
    out.push(`stored status ${entry.status}`)
  const render = decodeRender(get('x-render'))
  const from = render && sent.get(render.id)
  if (render === undefined || from === undefined) return out
  const route = routes[render.route] as RouteSpec
  if (from.method !== 'GET') out.push(`stored the render for a ${from.method}`)
  if (from.cacheControl === 'no-store') out.push('stored a response its request said no-store to')
  if (varies(route, '*')) out.push('stored a response with Vary: *')
  const cc = get('cache-control')
  if (credentialCookies(from.cookie) !== '' && !sharedFor(cc, 'cookie'))
    out.push(`stored the render for Cookie "${from.cookie}" without public/s-maxage`)
  if (from.authorization !== undefined && !sharedFor(cc, 'auth'))
    out.push(`stored the render for Authorization "${from.authorization}"`)
  if (entry.status !== 204) {
    const marker = bodyMarker(entry.body)
    if (marker === undefined || marker.length !== entry.body.length)
      out.push(`stored body truncated: ${entry.body.length} bytes, meant ${marker?.length ?? '?'}`)
  }
  return out
}
