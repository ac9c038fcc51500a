/**
 * The demo dashboard in headless Chromium, on a real memcached the test starts (so pause/resume is
 * the real SIGSTOP/SIGCONT): counters, each page's X-Cache and Age, the stampede button's
 * "origin renders: 1", invalidation by tag, pause and resume.
 *
 * Skips when Debian's chromium is not installed, except in CI (CI=true), where .ci/run installs it
 * and its absence is a failure.
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import pino from 'pino'
import { type Browser, chromium, type Page } from 'playwright-core'
import { createDemoApp, type DemoApp } from '../../demo/app.js'
import { MemcachedStore } from '../../src/index.js'
import { type MemcachedProcess, startMemcached } from '../helpers/memcached.js'

const CHROMIUM = '/usr/bin/chromium'
const inCI = (process.env.CI ?? '') !== '' && !['0', 'false'].includes(process.env.CI ?? '')
const missing = existsSync(CHROMIUM)
  ? undefined
  : `${CHROMIUM} not found: install Debian's chromium (apt-get install chromium) to run the dashboard test`

if (missing !== undefined && inCI) {
  it('chromium is installed in CI', () => assert.fail(`${missing} (CI=true: .ci/run installs it)`))
}

/** Polls `read` until `check` holds, or fails with the last value after `timeoutMs`. */
async function eventually<T>(
  what: string,
  read: () => Promise<T>,
  check: (value: T) => boolean,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let value = await read()
  while (!check(value)) {
    if (Date.now() > deadline) assert.fail(`${what}: still ${JSON.stringify(value)}`)
    await new Promise((r) => setTimeout(r, 100))
    value = await read()
  }
  return value
}

const text = async (page: Page, selector: string): Promise<string> =>
  ((await page.locator(selector).textContent()) ?? '').trim()
const stat = async (page: Page, name: string): Promise<number> =>
  Number(await text(page, `[data-stat="${name}"]`))
const row = (path: string): string => `#pages tr[data-path="${path}"]`

describe('demo dashboard in headless Chromium', { skip: missing }, () => {
  let mc: MemcachedProcess
  let demo: DemoApp
  let server: Server
  let browser: Browser
  let page: Page
  let base: string

  before(async () => {
    mc = await startMemcached()
    demo = createDemoApp(new MemcachedStore({ servers: [mc.address] }), {
      logger: pino({ level: 'silent' }),
      slowMs: 300,
      storeDescription: `memcached at ${mc.address}, started by the test`,
      memcached: mc,
    })
    server = demo.app.listen(0, '127.0.0.1')
    await new Promise<void>((resolve) => server.once('listening', () => resolve()))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    })
    page = await browser.newPage()
    await page.goto(`${base}/`)
  })

  after(async () => {
    await browser?.close()
    await mc?.resume() // a failed test may leave it stopped, which would hold up close()
    server?.closeAllConnections()
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()))
    await demo?.cache.close()
    await mc?.stop()
  })

  it('shows the store and the live counters', async () => {
    assert.match(await text(page, '#store'), new RegExp(`memcached at ${mc.address}`))
    await eventually(
      'requests.miss',
      () => text(page, '[data-stat="requests.miss"]'),
      (v) => /^\d+$/.test(v),
    )
    assert.match(await text(page, '#memcached-status'), new RegExp(`^running .*pid ${mc.pid}`))
  })

  it("shows each page's X-Cache and Age, and the counters follow", async () => {
    // The dashboard fetches every page on load: /slow renders once (MISS), /me is never cached.
    await eventually(
      '/slow X-Cache',
      () => text(page, `${row('/slow')} .x-cache`),
      (v) => v !== '',
    )
    await eventually(
      '/me X-Cache',
      () => text(page, `${row('/me')} .x-cache`),
      (v) => v === 'BYPASS',
    )
    const hits = await stat(page, 'requests.hit')
    // The stored copy lands just after the response: fetch until it is served from the cache.
    await eventually(
      '/slow X-Cache after Fetch',
      async () => {
        await page.click(`${row('/slow')} button`)
        await page.waitForTimeout(200)
        return text(page, `${row('/slow')} .x-cache`)
      },
      (v) => v === 'HIT',
    )
    assert.match(await text(page, `${row('/slow')} .age`), /^\d+$/)
    assert.equal(await text(page, `${row('/slow')} .status`), '200')
    await eventually(
      'requests.hit',
      () => stat(page, 'requests.hit'),
      (v) => v > hits,
    )
    assert.ok((await stat(page, 'requests.miss')) >= 1)
    assert.ok((await stat(page, 'requests.bypass')) >= 1)
    assert.ok((await stat(page, 'renders')) >= 1)
  })

  it('the stampede button shows "origin renders: 1"', async () => {
    const renders = await stat(page, 'renders')
    const before = demo.stampede.renders
    await page.click('#stampede')
    const result = await eventually(
      'stampede result',
      () => text(page, '#stampede-result'),
      (v) => v !== '',
      60_000,
    )
    assert.equal(result, 'origin renders: 1')
    const outcomes = await text(page, '#stampede-outcomes')
    assert.match(outcomes, /^50 requests: /)
    assert.match(outcomes, /\bMISS: 1\b/)
    const stale = Number(/\bSTALE: (\d+)/.exec(outcomes)?.[1])
    assert.ok(stale >= 1, outcomes)
    assert.match(outcomes, /HTTP 200: 50\)/)
    // The priming request may render too (the first time), the burst exactly once.
    assert.ok(demo.stampede.renders - before <= 2)
    await eventually(
      'renders',
      () => stat(page, 'renders'),
      (v) => v > renders,
    )
    assert.ok((await stat(page, 'locks.won')) >= 1)
    await eventually(
      'requests.stale',
      () => stat(page, 'requests.stale'),
      (v) => v >= stale,
    )
  })

  it('invalidates by tag: the page renders again', async () => {
    const invalidations = await stat(page, 'invalidations')
    assert.equal(await text(page, `${row('/slow')} .x-cache`), 'HIT')
    await page.selectOption('#tag', 'slow')
    await page.click('#invalidate')
    await eventually(
      'invalidate result',
      () => text(page, '#invalidate-result'),
      (v) => v === 'invalidated tag "slow"',
    )
    // The dashboard fetches the pages again after it.
    await eventually(
      '/slow after invalidate',
      () => text(page, `${row('/slow')} .x-cache`),
      (v) => ['MISS', 'STALE'].includes(v),
    )
    await eventually(
      'invalidations',
      () => stat(page, 'invalidations'),
      (v) => v > invalidations,
    )
  })

  it("pauses and resumes the demo's memcached; pages still answer while it is paused", async () => {
    await page.click('#pause')
    await eventually(
      'status',
      () => text(page, '#memcached-status'),
      (v) => v.startsWith('paused'),
    )
    assert.ok(await page.locator('#resume').isEnabled())
    await page.click(`${row('/news')} button`)
    // Fails open: the read gives up after its deadline and the route renders.
    await eventually(
      '/news while paused',
      () => text(page, `${row('/news')} .status`),
      (v) => v === '200',
    )
    // A key never seen: neither a hot copy nor anything else can answer it without memcached.
    assert.equal((await fetch(`${base}/slow?while=paused`)).status, 200)
    await eventually(
      'storeErrors',
      () => text(page, '[data-stat="storeErrors"]'),
      (v) => /\d/.test(v),
    )
    await page.click('#resume')
    await eventually(
      'status',
      () => text(page, '#memcached-status'),
      (v) => v.startsWith('running'),
    )
    assert.ok(await page.locator('#pause').isEnabled())
  })
})
