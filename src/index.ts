export type { Duration } from './duration.js'
export type { CacheOutcome, ResponseCache } from './middleware.js'
export type { ResponseCacheOptions, RouteOptions } from './options.js'
export { responseCache } from './response-cache.js'
export {
  InvalidKeyError,
  MemcachedStore,
  type MemcachedStoreEvent,
  type MemcachedStoreOptions,
  StoreClosedError,
  StoreConnectionError,
  type StoreErrorCode,
  StoreResponseError,
  StoreUnavailableError,
  ValueTooLargeError,
} from './store/memcached.js'
export { MemoryStore, type MemoryStoreOptions } from './store/memory.js'
export { type CacheStore, routingKey } from './store/types.js'
