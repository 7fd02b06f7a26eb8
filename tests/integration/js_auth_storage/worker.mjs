// One service process as js-auth's README writes it (makeIntegration and makeSalesChannel
// with a storage), run 20 at once by test_js_auth_storage.py. WORKER (JSON) says which
// js-auth to load and which storage to give it:
//   memory     js-auth's README memoryStorage(): every process fetches its own tokens
//   adapter    the cl-tokend storage alone
//   composite  createCompositeStorage: memoryStorage() first, the cl-tokend storage second
// Prints "RESULT {json}" with the tokens it got; with `reject`, then waits for a line on
// stdin, reports the tokens rejected through removeAuthorization(), and prints the tokens
// it gets next. The auth server is the fake (domain localhost:PORT, *.localhost resolved to
// loopback by loopback.mjs, test CA in NODE_EXTRA_CA_CERTS).
import { createInterface } from 'node:readline'
import './loopback.mjs'
import { createClTokendStorage } from 'cl-tokend-js-auth-storage'

const P = JSON.parse(process.env.WORKER)
const { makeIntegration, makeSalesChannel, createCompositeStorage } = await import(P.lib)

// js-auth's README example storage.
function memoryStorage () {
  const store = new Map()
  return {
    name: 'in-memory',
    async getItem (key) { return store.get(key) ?? null },
    async setItem (key, value) { store.set(key, value) },
    async removeItem (key) { store.delete(key) }
  }
}

let storage
let clTokend
if (P.mode === 'memory') {
  storage = memoryStorage()
} else {
  clTokend = createClTokendStorage({ socketPath: P.socket, timeoutMs: 10000 })
  storage = P.mode === 'adapter'
    ? clTokend
    : createCompositeStorage({ name: 'composite', storages: [memoryStorage(), clTokend] })
}

const domain = `localhost:${P.port}`
const integration = makeIntegration({ clientId: P.integration.clientId, clientSecret: P.integration.clientSecret, domain }, { storage })
// Customer tokens stay in a storage of the visitor's own, as js-auth recommends.
const salesChannel = makeSalesChannel({ clientId: P.salesChannel.clientId, scope: P.salesChannel.scope, domain },
  { storage, customerStorage: memoryStorage() })

async function tokens () {
  const it = await integration.getAuthorization()
  const sc = await salesChannel.getAuthorization()
  if (it.errors || sc.errors) throw new Error(JSON.stringify({ it: it.errors, sc: sc.errors }))
  return { integration: it.accessToken, salesChannel: sc.accessToken, expiresIn: it.expiresIn, ownerType: sc.ownerType }
}

console.log('RESULT ' + JSON.stringify(await tokens()))
if (P.reject) {
  const lines = createInterface({ input: process.stdin })
  for await (const line of lines) { if (line === 'go') break }
  lines.close()
  // What a service does when the Core API answers 401 for the token it used.
  await integration.removeAuthorization()
  await salesChannel.removeAuthorization()
  console.log('RESULT ' + JSON.stringify(await tokens()))
}
await storage.dispose?.()
