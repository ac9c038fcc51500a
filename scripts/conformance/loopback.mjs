// Preload (node --import) for the suite's origin server: a net server that calls listen(port) without
// a host binds 127.0.0.1 only, not every interface.
import net from 'node:net'

const listen = net.Server.prototype.listen
net.Server.prototype.listen = function loopbackListen(...args) {
  const [first] = args
  if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    if (args.length === 1 || typeof args[1] === 'function') args.splice(1, 0, '127.0.0.1')
  } else if (first && typeof first === 'object' && first.port !== undefined && !first.host) {
    args[0] = { ...first, host: '127.0.0.1' }
  }
  return listen.apply(this, args)
}
