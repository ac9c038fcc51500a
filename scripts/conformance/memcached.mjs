// Starts one memcached for the harness on a free loopback port; only the PID started here is killed.
import { spawn } from 'node:child_process'
import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

const answers = (port) =>
  new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    socket.setTimeout(500, () => socket.destroy())
    socket.once('error', () => resolve(false))
    socket.once('close', () => resolve(false))
    socket.once('connect', () => socket.write('version\r\n'))
    socket.once('data', (d) => {
      resolve(String(d).startsWith('VERSION'))
      socket.destroy()
    })
  })

/** Resolves { address, stop } once the server answers `version`. */
export async function startMemcached() {
  const port = await freePort()
  const args = ['-l', '127.0.0.1', '-p', String(port), '-U', '0', '-m', '64']
  // memcached refuses to run as root without -u.
  if (process.getuid?.() === 0) args.push('-u', 'nobody')
  const child = spawn(process.env.MEMCACHED_BIN || 'memcached', args, { stdio: 'ignore' })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.once('error', (err) => {
    console.error(`cannot start memcached (${err.message}); install it or set MC=host:port`)
    process.exit(1)
  })
  for (let i = 0; i < 100; i++) {
    if (await answers(port)) {
      return {
        address: `127.0.0.1:${port}`,
        stop: async () => {
          child.kill('SIGKILL')
          await exited
        },
      }
    }
    await sleep(50)
  }
  child.kill('SIGKILL')
  throw new Error('memcached did not answer within 5 s')
}
