// The cl-tokend storage where it does not hold the token, in one process (WORKER as for
// worker.mjs, plus `other`: a client the daemon does not hold, and `customerToken`):
//   unknown   a key no credential matches: js-auth fetches its own token, kept in memory
//   down      no daemon on the socket: js-auth works on its own
//   customer  the storage alone for a sales channel: the guest token is the daemon's, and
//             setCustomer() is refused rather than shared with every visitor
//   timing    what a getAuthorization() costs with the storage (a socket round trip)
// Prints "RESULT {json}".
import './loopback.mjs'
import { createClTokendStorage } from 'cl-tokend-js-auth-storage'

const P = JSON.parse(process.env.WORKER)
const { makeIntegration, makeSalesChannel } = await import(P.lib)
const domain = `localhost:${P.port}`
const result = {}

function recorder () {
  const lines = []
  return { lines, warn: (line) => lines.push(line) }
}

{
  const logger = recorder()
  const storage = createClTokendStorage({ socketPath: P.socket, logger })
  const other = makeIntegration({ clientId: P.other.clientId, clientSecret: P.other.clientSecret, domain }, { storage })
  const a = await other.getAuthorization()
  const b = await other.getAuthorization()
  result.unknown = { token: a.accessToken, same: a.accessToken === b.accessToken, warnings: logger.lines }
  await storage.dispose()
}
{
  const logger = recorder()
  const storage = createClTokendStorage({ socketPath: `${P.socket}.missing`, logger })
  const integration = makeIntegration({ ...P.integration, domain }, { storage })
  const a = await integration.getAuthorization()
  const b = await integration.getAuthorization()
  result.down = { token: a.accessToken, same: a.accessToken === b.accessToken, warnings: logger.lines }
  await storage.dispose()
}
{
  const storage = createClTokendStorage({ socketPath: P.socket, logger: null })
  const salesChannel = makeSalesChannel({ ...P.salesChannel, domain }, { storage })
  const guest = await salesChannel.getAuthorization()
  let refused = null
  try {
    await salesChannel.setCustomer({ accessToken: P.customerToken, scope: P.salesChannel.scope })
  } catch (error) {
    refused = { name: error.name, code: error.code, message: error.message }
  }
  const after = await salesChannel.getAuthorization()
  result.customer = { guest: guest.accessToken, refused, after: after.accessToken, ownerType: after.ownerType }
  await storage.dispose()
}
{
  const storage = createClTokendStorage({ socketPath: P.socket, logger: null })
  const integration = makeIntegration({ ...P.integration, domain }, { storage })
  await integration.getAuthorization()
  const calls = 500
  const start = process.hrtime.bigint()
  for (let i = 0; i < calls; i++) await integration.getAuthorization()
  result.timing = { calls, microsecondsEach: Number(process.hrtime.bigint() - start) / 1000 / calls }
  await storage.dispose()
}
console.log('RESULT ' + JSON.stringify(result))
