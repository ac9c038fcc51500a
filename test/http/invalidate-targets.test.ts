/** What `cache.invalidate()` accepts: a path, a path with a query, an absolute URL, a decoded path. */
import assert from 'node:assert/strict'
import { it } from 'node:test'
import pino from 'pino'
import request from 'supertest'
import { MemoryStore, responseCache } from '../../src/index.js'
import { forEachExpress } from '../helpers/express.js'

forEachExpress('invalidate() targets', (express) => {
  it('reduces each target to the path requests are keyed by, percent-encoded', async (t) => {
    const cache = responseCache({ store: new MemoryStore(), logger: pino({ level: 'silent' }) })
    t.after(() => cache.close())
    const app = express()
    let renders = 0
    app.use(cache)
    app.get(/.*/, (req, res) => {
      renders++
      res.send(`${req.path} ${renders}`)
    })
    const paths = ['/news', '/caf%C3%A9', '/a/b']
    const targets = ['/news?page=2#top', '/café', 'https://example.com/a/b?x=1']
    for (const path of paths) {
      await request(app).get(path)
      await cache.settled()
      assert.equal((await request(app).get(path)).headers['x-cache'], 'HIT', path)
    }
    await cache.invalidate(targets)
    for (const path of paths) {
      assert.equal((await request(app).get(path)).headers['x-cache'], 'MISS', path)
    }
  })
})
