/**
 * Safe methods (RFC 9110 §9.2.1), the only ones that leave stored responses valid. Method names are
 * case-sensitive (RFC 9110 §9.1): `get` is not GET.
 */
const SAFE = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE'])

export function isSafeMethod(method: string): boolean {
  return SAFE.has(method)
}

/**
 * RFC 9111 §4.4: a cache invalidates the target URI (and same-origin Location / Content-Location)
 * when a request with an unsafe method, any method not known to be safe (M-SEARCH, PROPFIND, or an
 * invented one included), receives a non-error status: 2xx or 3xx.
 */
export function invalidatesStored(method: string, status: number): boolean {
  return !isSafeMethod(method) && status >= 200 && status < 400
}
