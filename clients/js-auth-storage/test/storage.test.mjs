// The storage against a stand-in daemon on a Unix socket (node:test, no dependencies):
// which keys it serves, what it asks the daemon, and what it does when the daemon is
// missing, slow, refuses or has no token. ctest: clients.js_auth_storage. The test with
// the real js-auth and the real daemon is tests/integration/test_js_auth_storage.py.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createClTokendStorage, ClTokendError } from '../index.mjs'
import cjs from '../index.cjs'

const IAT = 1795640584
const jwt = (n) => ['eyJhbGciOiJSUzUxMiJ9', Buffer.from(JSON.stringify({ iat: IAT, n })).toString('base64url'), 'c2ln'].join('.')

/** A stand-in daemon: `routes` maps "METHOD /path" to (req, body) => [status, doc, headers], 'hang' or 'reset'. */
async function daemon (routes) {
  const dir = mkdtempSync(join(tmpdir(), 'cltok-js-'))
  const socketPath = join(dir, 's.sock')
  const seen = []
  const held = []
  const server = http.createServer((req, res) => {
    let body = ''
    req.on('data', (c) => { body += c })
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, body })
      const route = routes[`${req.method} ${req.url.split('?')[0]}`]
      const answer = route ? route(req, body) : [404, { error: { code: 'not_found', message: 'no such endpoint' } }]
      if (answer === 'hang') { held.push(res); return }
      if (answer === 'reset') { req.socket.destroy(); return }
      const [status, doc, headers = {}] = answer
      res.writeHead(status, { 'content-type': 'application/json', ...headers })
      res.end(JSON.stringify(doc))
    })
  })
  await new Promise((resolve) => server.listen(socketPath, resolve))
  return {
    socketPath,
    seen,
    async close () {
      for (const res of held) res.destroy()
      server.closeAllConnections?.()
      await new Promise((resolve) => server.close(resolve))
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

const credentials = (...list) => () => [200, { credentials: list }]
const token = (n, extra = {}) => () => [200, {
  credential: 'x', kind: 'sales_channel', access_token: jwt(n), token_type: 'bearer', scope: 'market:code:eu-west', expires_at: '2026-11-25T21:03:04Z', expires_in: 5423, ...extra
}]
function recorder () {
  const lines = []
  return { lines, warn: (line) => lines.push(line) }
}

test('both module systems load the same implementation', () => {
  assert.equal(cjs.createClTokendStorage, createClTokendStorage)
  assert.equal(cjs.ClTokendError, ClTokendError)
})

test('a key is matched whole against the keys js-auth builds, never split at a dash', async () => {
  const d = await daemon({
    'GET /v1/credentials': credentials(
      { name: 'eu', kind: 'sales_channel', client_id: 'sc-eu-1', scope: 'market:code:eu-west' },
      { name: 'it', kind: 'integration', client_id: 'it-back-office', scope: null }),
    'GET /v1/tokens/eu': token(1),
    'GET /v1/tokens/it': token(2, { scope: 'market:all' })
  })
  const logger = recorder()
  const storage = createClTokendStorage({ socketPath: d.socketPath, logger })
  try {
    const eu = await storage.getItem('cl_guest-sc-eu-1-market:code:eu-west')
    assert.equal(eu.accessToken, jwt(1))
    assert.deepEqual({ ...eu, expires: undefined }, {
      accessToken: jwt(1), tokenType: 'bearer', scope: 'market:code:eu-west', expiresIn: 5423, expires: undefined, createdAt: IAT, ownerType: 'guest'
    })
    assert.ok(eu.expires instanceof Date)
    // No scope in the config: js-auth's key says market:all.
    assert.equal((await storage.getItem('cl_guest-it-back-office-market:all')).accessToken, jwt(2))
    for (const near of ['cl_guest-sc-eu-market:code:eu-west', 'cl_guest-sc-eu-1-market:code:eu', 'cl_guest-sc-eu-1-market:code:eu-west ',
      'cl_guest-it-back-office-undefined', 'cl_guest-it-back-office-']) {
      assert.equal(await storage.getItem(near), null, near)
    }
    assert.equal(logger.lines.length, 5, logger.lines.join('\n'))
    assert.equal(await storage.getItem('cl_guest-sc-eu-market:code:eu-west'), null)
    assert.equal(logger.lines.length, 5, 'once per key')
    // The list is read once; tokens with min_ttl above js-auth's 600 s.
    assert.equal(d.seen.filter((r) => r.url === '/v1/credentials').length, 1)
    assert.deepEqual(d.seen.filter((r) => r.url.startsWith('/v1/tokens/')).map((r) => r.url),
      ['/v1/tokens/eu?min_ttl=660', '/v1/tokens/it?min_ttl=660'])
  } finally {
    await storage.dispose()
    await d.close()
  }
})

test('two credentials behind one key: neither is served', async () => {
  const d = await daemon({
    'GET /v1/credentials': credentials(
      { name: 'a', kind: 'integration', client_id: 'it-a', scope: 'market:code:eu' },
      { name: 'b', kind: 'integration', client_id: 'it-b', scope: 'market:code:eu' })
  })
  const logger = recorder()
  const storage = createClTokendStorage({ socketPath: d.socketPath, logger, getKey: ({ scope }, type) => `${type}-${scope}` })
  try {
    assert.equal(await storage.getItem('guest-market:code:eu'), null)
    assert.ok(logger.lines.some((l) => l.includes('two credentials')), logger.lines.join('\n'))
  } finally {
    await storage.dispose()
    await d.close()
  }
})

test('setItem is a no-op for the daemon\'s keys, keeps other guest keys, and refuses customers', async () => {
  const d = await daemon({
    'GET /v1/credentials': credentials({ name: 'eu', kind: 'sales_channel', client_id: 'sc', scope: 'market:code:eu' }),
    'GET /v1/tokens/eu': token(1)
  })
  const storage = createClTokendStorage({ socketPath: d.socketPath, logger: null })
  try {
    await storage.setItem('cl_guest-sc-market:code:eu', { accessToken: 'mine', scope: 'market:code:eu' })
    assert.equal((await storage.getItem('cl_guest-sc-market:code:eu')).accessToken, jwt(1))
    await storage.setItem('cl_guest-other-market:all', { accessToken: 'other', scope: 'market:all' })
    assert.equal((await storage.getItem('cl_guest-other-market:all')).accessToken, 'other')
    await storage.removeItem('cl_guest-other-market:all')
    assert.equal(await storage.getItem('cl_guest-other-market:all'), null)
    assert.equal(await storage.getItem('cl_customer-sc-market:code:eu'), null)
    for (const key of ['cl_customer-sc-market:code:eu', 'cl_customer-other-market:all']) {
      await assert.rejects(storage.setItem(key, { accessToken: 'customer', scope: 'x' }), (e) => e instanceof ClTokendError && e.code === 'ECUSTOMER')
    }
  } finally {
    await storage.dispose()
    await d.close()
  }
})

test('removeItem reports the token it last handed out, once', async () => {
  const d = await daemon({
    'GET /v1/credentials': credentials({ name: 'eu', kind: 'sales_channel', client_id: 'sc', scope: 'market:code:eu' }),
    'GET /v1/tokens/eu': token(1),
    'POST /v1/tokens/eu/invalidate': token(2)
  })
  const storage = createClTokendStorage({ socketPath: d.socketPath, logger: null })
  try {
    await storage.removeItem('cl_guest-sc-market:code:eu') // nothing handed out yet: nothing to report
    await storage.getItem('cl_guest-sc-market:code:eu')
    await storage.removeItem('cl_guest-sc-market:code:eu')
    await storage.removeItem('cl_guest-sc-market:code:eu')
    const reports = d.seen.filter((r) => r.url === '/v1/tokens/eu/invalidate')
    assert.deepEqual(reports.map((r) => JSON.parse(r.body)), [{ access_token: jwt(1) }])
  } finally {
    await storage.dispose()
    await d.close()
  }
})

test('no daemon on the socket: null, one warning, and js-auth\'s own token kept', async () => {
  const logger = recorder()
  const storage = createClTokendStorage({ socketPath: join(tmpdir(), 'cltok-none', 'missing.sock'), logger })
  try {
    assert.equal(await storage.getItem('cl_guest-it-market:all'), null)
    await storage.setItem('cl_guest-it-market:all', { accessToken: 'own', scope: 'market:all' })
    assert.equal((await storage.getItem('cl_guest-it-market:all')).accessToken, 'own')
    assert.equal(logger.lines.length, 1, logger.lines.join('\n'))
    assert.match(logger.lines[0], /ENOENT/)
    await assert.rejects(storage.setItem('cl_customer-it-market:all', { accessToken: 'c', scope: 'x' }), { code: 'ECUSTOMER' })
  } finally {
    await storage.dispose()
  }
})

test('a daemon that stops answering after the list: null by the deadline, then js-auth\'s own token without waiting', async () => {
  const d = await daemon({
    'GET /v1/credentials': credentials({ name: 'eu', kind: 'sales_channel', client_id: 'sc', scope: 'market:code:eu' }),
    'GET /v1/tokens/eu': () => 'hang'
  })
  const logger = recorder()
  const storage = createClTokendStorage({ socketPath: d.socketPath, timeoutMs: 200, logger })
  try {
    const start = Date.now()
    assert.equal(await storage.getItem('cl_guest-sc-market:code:eu'), null)
    assert.ok(Date.now() - start >= 190)
    // js-auth's own token, kept while the daemon does not answer: js-auth does not fetch
    // again at every call meanwhile.
    await storage.setItem('cl_guest-sc-market:code:eu', { accessToken: 'own', scope: 'market:code:eu' })
    const again = Date.now()
    assert.equal((await storage.getItem('cl_guest-sc-market:code:eu')).accessToken, 'own')
    assert.ok(Date.now() - again < 150)
    assert.equal(d.seen.filter((r) => r.url.startsWith('/v1/tokens/')).length, 1)
  } finally {
    await storage.dispose()
    await d.close()
  }
})

test('a daemon that does not answer: null by the deadline, never a hang', async () => {
  const d = await daemon({ 'GET /v1/credentials': () => 'hang' })
  const logger = recorder()
  const storage = createClTokendStorage({ socketPath: d.socketPath, timeoutMs: 200, logger })
  try {
    const start = Date.now()
    assert.equal(await storage.getItem('cl_guest-it-market:all'), null)
    const took = Date.now() - start
    assert.ok(took >= 190 && took < 5000, `took ${took} ms`)
    assert.match(logger.lines[0], /ETIMEDOUT/)
    // Within retryMs the storage does not wait for the daemon again.
    const again = Date.now()
    assert.equal(await storage.getItem('cl_guest-it-market:all'), null)
    assert.ok(Date.now() - again < 150)
  } finally {
    await storage.dispose()
    await d.close()
  }
})

test('no valid token, or a peer the credential does not allow: a clear error', async () => {
  const d = await daemon({
    'GET /v1/credentials': credentials(
      { name: 'down', kind: 'integration', client_id: 'it-down', scope: null },
      { name: 'gone', kind: 'integration', client_id: 'it-gone', scope: null }),
    'GET /v1/tokens/down': () => [503, { error: { code: 'upstream_unavailable', message: 'the auth server answered 500' } }, { 'retry-after': '7' }],
    'GET /v1/tokens/gone': () => [403, { error: { code: 'forbidden', message: 'this peer may not use this credential' } }]
  })
  const storage = createClTokendStorage({ socketPath: d.socketPath, logger: null })
  try {
    await assert.rejects(storage.getItem('cl_guest-it-down-market:all'), (e) => {
      assert.ok(e instanceof ClTokendError)
      assert.equal(e.code, 'EUNAVAILABLE')
      assert.equal(e.retryAfter, 7)
      assert.match(e.message, /the auth server answered 500/)
      return true
    })
    await assert.rejects(storage.getItem('cl_guest-it-gone-market:all'), { code: 'EFORBIDDEN' })
  } finally {
    await storage.dispose()
    await d.close()
  }
})

test('a kept-alive connection the daemon closed as a request went out is not a daemon gone', async () => {
  // The second request on each connection finds it closed, as when the daemon's idle
  // timeout ends it at that moment; on a fresh connection the request is answered.
  const d = await daemon({
    'GET /v1/credentials': credentials({ name: 'eu', kind: 'sales_channel', client_id: 'sc', scope: 'market:code:eu' }),
    'GET /v1/tokens/eu': (req) => {
      req.socket.requests = (req.socket.requests ?? 0) + 1
      return req.socket.requests > 1 ? 'reset' : token(1)()
    }
  })
  const logger = recorder()
  const storage = createClTokendStorage({ socketPath: d.socketPath, logger })
  try {
    for (let i = 0; i < 3; i++) assert.equal((await storage.getItem('cl_guest-sc-market:code:eu')).accessToken, jwt(1))
    assert.deepEqual(logger.lines, [])
  } finally {
    await storage.dispose()
    await d.close()
  }
})
