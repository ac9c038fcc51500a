/** The stable code every configuration error carries, for `err.code === 'EFTC_OPTION'` checks. */
export type ConfigErrorCode = 'EFTC_OPTION'

const PREFIX = 'express-ft-cache: '

/**
 * An invalid option, thrown at startup by `responseCache()` and `cache.route()`. A TypeError, so
 * existing `instanceof TypeError` checks keep working; `code` is stable across versions, the message
 * is not (it says how to fix the option and may improve).
 */
export class ConfigError extends TypeError {
  readonly code: ConfigErrorCode = 'EFTC_OPTION'
  /** The option at fault, when one is (e.g. 'ttl'). */
  readonly option: string | undefined

  constructor(message: string, option?: string, options?: ErrorOptions) {
    super(message.startsWith(PREFIX) ? message : PREFIX + message, options)
    this.name = 'ConfigError'
    this.option = option
  }
}
