export { ConfigError, type ConfigErrorCode } from './config-error.js'
export type { Duration, DurationUnit } from './duration.js'
export { InvalidationError } from './engine/invalidate.js'
export type { CacheStats } from './engine/stats.js'
export type { CacheOutcome, ResponseCache } from './middleware.js'
export type { HotCacheOptions, ResponseCacheOptions, RouteOptions } from './options.js'
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
