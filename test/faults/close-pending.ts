/**
 * Child script for limits.test.ts (a todo test): shutting down while store calls are pending on a
 * connection that memcached closed cleanly (as it does at its connection limit).
 *
 * A stand-in for memcached reads whatever it is sent, and 300 ms after the first request answers
 * "ERROR Too many open connections" and closes the connection cleanly. memjs never calls back the
 * requests written before that close (memjs #162/#172), so only the store's deadlines end them,
 * on unref()ed timers. After one request (it leaves the `get` and the write-back `set` pending), the
 * HTTP server and the stand-in's listener are closed and `await cache.close()` is all that is left.
 * Prints 'closed' once close() resolves.
 */
import { createServer } from 'node:net'
import express from 'express'
import { MemcachedStore, responseCache } from '../../src/index.js'

const full = createServer((socket) => {
  socket.on('error', () => {})
  socket.resume()
  socket.once('data', () => {
    setTimeout(() => socket.end('ERROR Too many open connections\r\n'), 300)
  })
})
full.listen(0, '127.0.0.1', () => {
  const port = (full.address() as { port: number }).port
  const cache = responseCache({
    // A 1 s store deadline (2 s with the connect allowance) outlasts the stand-in's close; the
    // request path still gives up after 100 ms.
    store: new MemcachedStore({ servers: `127.0.0.1:${port}`, timeout: '1s' }),
    timeout: '100ms',
  })
  const app = express()
    .use(cache)
    .get('/', (_req, res) => {
      res.send('body')
    })
  const server = app.listen(0, '127.0.0.1', async () => {
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`
    console.log(`response ${await (await fetch(url)).text()}`)
    server.closeAllConnections()
    server.close()
    full.close()
    const started = Date.now()
    await cache.close()
    console.log(`closed after ${Date.now() - started} ms`)
  })
})
process.on('exit', (code) => console.log(`exit ${code}`))
