// Preloaded into the suite's origin server (node --import): the server calls
// listen(port) with no host, which binds every interface; this keeps it on
// 127.0.0.1 as everything the conformance job starts.
import net from 'node:net'

const listen = net.Server.prototype.listen
net.Server.prototype.listen = function (...args) {
  if (args.length >= 1 && (typeof args[0] === 'number' || /^[0-9]+$/.test(String(args[0]))) &&
      typeof args[1] !== 'string') {
    args.splice(1, 0, '127.0.0.1')
  }
  return listen.apply(this, args)
}
