import { after, before } from 'node:test'
import { type MemcachedProcess, type StartMemcachedOptions, startMemcached } from './memcached.js'

/**
 * One memcached for a whole test file: started before its first test, stopped after its last. The
 * handle is returned at once, while the file registers its tests; its fields name the running
 * process, so they are read inside tests (after `before` has started it).
 */
export function memcachedForFile(options: StartMemcachedOptions = {}): MemcachedProcess {
  let started: MemcachedProcess | undefined
  before(async () => {
    started = await startMemcached(options)
  })
  after(async () => {
    await started?.stop()
  })
  const current = (): MemcachedProcess => {
    if (started === undefined) throw new Error('memcached starts in before(): use it inside a test')
    return started
  }
  return {
    get port() {
      return current().port
    },
    get pid() {
      return current().pid
    },
    get address() {
      return current().address
    },
    stop: () => current().stop(),
    pause: () => current().pause(),
    resume: () => current().resume(),
    restart: () => current().restart(),
  }
}
