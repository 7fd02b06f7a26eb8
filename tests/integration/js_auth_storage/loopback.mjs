// Loaded first (node --import, or imported) by every Node process of the js-auth storage
// test: Node's fetch, which js-auth calls, reaches only *.localhost, sent to loopback where
// the fake auth server listens. Every other name is refused, so nothing here can reach the
// real service even when js-auth fetches a token itself.
import { Agent, setGlobalDispatcher } from 'undici'

function loopbackLookup (hostname, options, callback) {
  if (typeof options === 'function') { callback = options; options = {} }
  if (hostname === 'localhost' || hostname.endsWith('.localhost')) {
    return options.all ? callback(null, [{ address: '127.0.0.1', family: 4 }]) : callback(null, '127.0.0.1', 4)
  }
  const err = new Error(`${hostname}: tests resolve only *.localhost`)
  err.code = 'ENOTFOUND'
  callback(err)
}
setGlobalDispatcher(new Agent({ connect: { lookup: loopbackLookup } }))
