// Faithfulness check: the official @commercelayer/js-auth library, used unchanged, gets and
// uses tokens from the fake auth server as it would from Commerce Layer.
//
// Run by run_js_auth.py, which starts the fake with issuer https://auth.localhost:PORT and
// passes FAKE_AUTH_PARAMS (JSON) and NODE_EXTRA_CA_CERTS (the test CA: TLS verification
// stays on). The library always builds "https://auth.${domain}/oauth/token" and follows the
// token's `iss` for /oauth/revoke and /.well-known/jwks.json, so the test gives it
// domain "localhost:PORT" and resolves *.localhost to loopback in the HTTP dispatcher
// (RFC 6761 reserves the name for that). Every other name is refused, so nothing here can
// reach the real service.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Agent, setGlobalDispatcher } from 'undici'
import {
  authenticate,
  createAssertion,
  getCoreApiBaseEndpoint,
  getTokenType,
  jwtDecode,
  jwtIsIntegration,
  jwtIsSalesChannel,
  jwtVerify,
  makeIntegration,
  makeSalesChannel,
  revoke
} from '@commercelayer/js-auth'

const P = JSON.parse(process.env.FAKE_AUTH_PARAMS ?? 'null')
assert.ok(P, 'FAKE_AUTH_PARAMS is not set: run this through run_js_auth.py')
const domain = `localhost:${P.port}`
const fakeUrl = `https://localhost:${P.port}`

function loopbackLookup (hostname, options, callback) {
  if (typeof options === 'function') { callback = options; options = {} }
  if (hostname === 'localhost' || hostname.endsWith('.localhost')) {
    return options.all
      ? callback(null, [{ address: '127.0.0.1', family: 4 }])
      : callback(null, '127.0.0.1', 4)
  }
  const err = new Error(`${hostname}: tests resolve only *.localhost`)
  err.code = 'ENOTFOUND'
  callback(err)
}
// Node's global fetch (what the library calls) reads undici's global dispatcher.
setGlobalDispatcher(new Agent({ connect: { lookup: loopbackLookup } }))

async function fake (method, path, body) {
  const res = await fetch(`${fakeUrl}${path}`, {
    method,
    headers: { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  return { status: res.status, body: await res.json() }
}

async function check (token) {
  const res = await fetch(`${fakeUrl}/api/check`, { headers: { Authorization: `Bearer ${token}` } })
  return { status: res.status, body: await res.json() }
}

function memoryStorage (name) {
  const items = new Map()
  return {
    name,
    items,
    async getItem (key) { return items.get(key) ?? null },
    async setItem (key, value) { items.set(key, value) },
    async removeItem (key) { items.delete(key) }
  }
}

const integration = { clientId: P.integration.client_id, clientSecret: P.integration.client_secret, domain }
const salesChannel = { clientId: P.sales_channel.client_id, scope: P.sales_channel.scope, domain }

test('integration: client_credentials', async () => {
  await fake('POST', '/_fake/reset')
  const before = Date.now()
  const auth = await authenticate('client_credentials', integration)
  assert.equal(auth.errors, undefined, JSON.stringify(auth.errors))
  assert.equal(typeof auth.accessToken, 'string')
  assert.equal(auth.tokenType, 'bearer')
  assert.equal(auth.expiresIn, 7200)
  assert.equal(auth.scope, 'market:all')
  assert.equal(typeof auth.createdAt, 'number')
  assert.ok(auth.expires instanceof Date && auth.expires.getTime() >= before + 7199000)

  const decoded = jwtDecode(auth.accessToken)
  assert.equal(decoded.header.alg, 'RS512')
  assert.ok(jwtIsIntegration(decoded.payload))
  assert.equal(getTokenType(decoded.payload), 'integration:guest')
  assert.equal(decoded.payload.iss, `https://auth.${domain}`)
  // Fetches ${iss}/.well-known/jwks.json and checks the RS512 signature with WebCrypto.
  const verified = await jwtVerify(auth.accessToken)
  assert.equal(verified.payload.application.client_id, P.integration.client_id)
  assert.equal(getCoreApiBaseEndpoint(auth.accessToken), `https://${P.organization_slug}.${domain}`)

  const checked = await check(auth.accessToken)
  assert.equal(checked.status, 200)
  assert.equal(checked.body.client_id, P.integration.client_id)
  const stats = (await fake('GET', '/_fake/stats')).body
  assert.equal(stats.token_requests[P.integration.client_id], 1)
})

test('integration: a wrong secret is an errors array', async () => {
  const auth = await authenticate('client_credentials', { ...integration, clientSecret: 'wrong' })
  assert.ok(Array.isArray(auth.errors))
  assert.equal(auth.errors[0].title, 'invalid_client')
  assert.equal(auth.errors[0].code, 'UNAUTHORIZED')
  assert.equal(auth.errors[0].status, 401)
})

test('errors as a single object are understood by the library', async () => {
  await fake('POST', '/_fake/control', { mode: 'errors_object', count: 1 })
  const auth = await authenticate('client_credentials', integration)
  assert.ok(Array.isArray(auth.errors), 'the library wraps a lone errors object')
  assert.equal(auth.errors[0].title, 'invalid_client')
})

test('integration: makeIntegration caches in its storage and revokes', async () => {
  await fake('POST', '/_fake/reset')
  const storage = memoryStorage('memory')
  const client = makeIntegration(integration, { storage })
  const first = await client.getAuthorization()
  const second = await client.getAuthorization()
  assert.equal(first.ownerType, 'guest')
  assert.equal(second.accessToken, first.accessToken)
  assert.ok(first.expiresIn > 7000)
  assert.equal((await fake('GET', '/_fake/stats')).body.token_requests_total, 1)
  // revoke() posts to ${iss}/oauth/revoke.
  assert.deepEqual(await client.revokeAuthorization(), {})
  const checked = await check(first.accessToken)
  assert.equal(checked.status, 401)
  assert.equal(checked.body.errors[0].code, 'INVALID_TOKEN')
})

test('sales channel: client_credentials with a market scope', async () => {
  const auth = await authenticate('client_credentials', salesChannel)
  assert.equal(auth.errors, undefined, JSON.stringify(auth.errors))
  assert.equal(auth.scope, P.sales_channel.scope)
  assert.equal(auth.expiresIn, 14400)
  const { payload } = await jwtVerify(auth.accessToken)
  assert.ok(jwtIsSalesChannel(payload))
  assert.equal(getTokenType(payload), 'sales_channel:guest')
  assert.equal(payload.application.public, true)
  assert.ok(Array.isArray(payload.market.id) && payload.market.id.length === 1)
  assert.equal((await check(auth.accessToken)).status, 200)

  const bad = await authenticate('client_credentials', { ...salesChannel, scope: 'market:code:atlantis' })
  assert.equal(bad.errors[0].title, 'invalid_scope')
  assert.equal(bad.errors[0].status, 400)
})

test('sales channel: password then refresh_token', async () => {
  const auth = await authenticate('password', {
    ...salesChannel, username: P.customer.username, password: P.customer.password
  })
  assert.equal(auth.errors, undefined, JSON.stringify(auth.errors))
  assert.equal(auth.ownerId, P.customer.customer_id)
  assert.equal(auth.ownerType, 'customer')
  assert.equal(typeof auth.refreshToken, 'string')
  const { payload } = await jwtVerify(auth.accessToken)
  assert.equal(getTokenType(payload), 'sales_channel:customer')
  assert.equal(payload.owner.id, P.customer.customer_id)

  const refreshed = await authenticate('refresh_token', { ...salesChannel, refreshToken: auth.refreshToken })
  assert.equal(refreshed.errors, undefined, JSON.stringify(refreshed.errors))
  assert.notEqual(refreshed.accessToken, auth.accessToken)
  assert.notEqual(refreshed.refreshToken, auth.refreshToken)
  assert.equal(refreshed.ownerId, P.customer.customer_id)
  const checked = await check(refreshed.accessToken)
  assert.equal(checked.status, 200)
  assert.equal(checked.body.owner_id, P.customer.customer_id)

  // The rotated refresh token is spent.
  const again = await authenticate('refresh_token', { ...salesChannel, refreshToken: auth.refreshToken })
  assert.equal(again.errors[0].title, 'invalid_grant')

  const wrong = await authenticate('password', { ...salesChannel, username: P.customer.username, password: 'nope' })
  assert.equal(wrong.errors[0].title, 'invalid_grant')
})

test('sales channel: makeSalesChannel with a customer, then logout revokes', async () => {
  const storage = memoryStorage('memory')
  const client = makeSalesChannel(salesChannel, { storage })
  const guest = await client.getAuthorization()
  assert.equal(guest.ownerType, 'guest')
  const login = await authenticate('password', {
    ...salesChannel, username: P.customer.username, password: P.customer.password
  })
  await client.setCustomer({ accessToken: login.accessToken, scope: login.scope, refreshToken: login.refreshToken })
  const customer = await client.getAuthorization()
  assert.equal(customer.ownerType, 'customer')
  assert.equal(customer.ownerId, P.customer.customer_id)
  assert.deepEqual(await client.logoutCustomer(), {})
  assert.equal((await check(login.accessToken)).status, 401)
})

test('jwt-bearer: an assertion from createAssertion()', async () => {
  const assertion = await createAssertion({
    payload: { 'https://commercelayer.io/claims': { owner: { type: 'Customer', id: P.customer.customer_id } } }
  })
  const auth = await authenticate('urn:ietf:params:oauth:grant-type:jwt-bearer', {
    clientId: P.confidential.client_id, clientSecret: P.confidential.client_secret, assertion, domain
  })
  assert.equal(auth.errors, undefined, JSON.stringify(auth.errors))
  assert.equal(auth.ownerId, P.customer.customer_id)
  assert.equal((await check(auth.accessToken)).status, 200)
})

test('rate limit: 429 reaches the library as an errors array', async () => {
  await fake('POST', '/_fake/control', { mode: '429', retry_after: '3', count: 1 })
  const auth = await authenticate('client_credentials', integration)
  assert.equal(auth.errors[0].status, 429)
  const ok = await authenticate('client_credentials', integration)
  assert.equal(ok.errors, undefined)
})
