'use strict'
// A @commercelayer/js-auth Storage backed by cl-tokend: js-auth keeps calling
// getAuthorization() as before, and finds the daemon's token under its key, so every process
// on the host shares one token per credential and one upstream request per refresh.
// No dependencies: node:http over the daemon's Unix socket, one kept-alive agent.
const http = require('node:http')

const DEFAULT_SOCKET = '/run/cl-tokend/cl-tokend.sock'
// js-auth (v7 and v8) uses a stored token only while it has at least 600 s left, and asks
// the auth server itself otherwise. Asking the daemon for a minute more than that leaves
// room for the request and for clocks, so js-auth never finds a token it would refuse.
const JS_AUTH_MIN_LEFT_S = 600
const DEFAULT_MIN_TTL_S = JS_AUTH_MIN_LEFT_S + 60
// Errors that mean "no daemon answering here now": js-auth can do without it meanwhile.
const UNAVAILABLE = new Set(['ENOENT', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT'])

class ClTokendError extends Error {
  constructor (message, code, retryAfter) {
    super(message)
    this.name = 'ClTokendError'
    this.code = code
    if (retryAfter !== undefined) this.retryAfter = retryAfter
  }
}

/** js-auth's own default key. */
function defaultKey ({ clientId, scope }, type) {
  return `cl_${type}-${clientId}-${scope}`
}

/** The scope js-auth asks with for a credential: its own default when the credential names none. */
function jsAuthScope (scope) {
  return scope == null || scope === '' ? 'market:all' : scope
}

/** A JWT's iat (Commerce Layer's created_at), or undefined. */
function issuedAt (token) {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'))
    return Number.isInteger(payload.iat) ? payload.iat : undefined
  } catch {
    return undefined
  }
}

function createClTokendStorage (options = {}) {
  const socketPath = options.socketPath ?? process.env.CL_TOKEND_SOCKET ?? DEFAULT_SOCKET
  const timeoutMs = options.timeoutMs ?? 5000
  const minTtl = Math.max(options.minTtl ?? DEFAULT_MIN_TTL_S, JS_AUTH_MIN_LEFT_S + 1)
  const credentialsTtlMs = options.credentialsTtlMs ?? 60000
  const retryMs = options.retryMs ?? 5000
  const getKey = options.getKey ?? defaultKey
  const logger = options.logger === undefined ? console : options.logger
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 8 })

  const fallback = new Map() // guest keys the daemon does not hold: kept as js-auth's memory storage would
  const served = new Map() // key -> the access token last handed out, for removeItem to report
  const logged = new Set()
  let known = null // { at, byKey: Map(guest key -> credential), customerKeys: Set }
  let listing = null
  let downUntil = 0

  function logOnce (id, message) {
    if (logger && !logged.has(id)) {
      logged.add(id)
      logger.warn(`[cl-tokend storage] ${message}`)
    }
  }

  async function call (method, path, body) {
    try {
      return await exchange(method, path, body)
    } catch (error) {
      // The daemon closes idle connections; one it closed just as this request went out
      // on it is not a daemon gone away. Every call is safe to repeat once.
      if (!error.reusedSocket) throw error
      return await exchange(method, path, body)
    }
  }

  function exchange (method, path, body) {
    return new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body)
      const headers = { host: 'localhost', accept: 'application/json' }
      if (payload !== undefined) {
        headers['content-type'] = 'application/json'
        headers['content-length'] = Buffer.byteLength(payload)
      }
      let timer
      const fail = (error) => {
        clearTimeout(timer)
        reject(error)
      }
      const req = http.request({ socketPath, agent, method, path, headers }, (res) => {
        const chunks = []
        res.on('data', (chunk) => chunks.push(chunk))
        res.on('error', fail)
        res.on('end', () => {
          clearTimeout(timer)
          let doc = null
          try {
            doc = JSON.parse(Buffer.concat(chunks).toString('utf8'))
          } catch {}
          resolve({ status: res.statusCode, headers: res.headers, doc })
        })
      })
      // A deadline on the whole exchange, so that a stopped daemon never hangs js-auth.
      timer = setTimeout(() => {
        const error = new Error(`cl-tokend did not answer within ${timeoutMs} ms`)
        error.code = 'ETIMEDOUT'
        req.destroy(error)
      }, timeoutMs)
      timer.unref?.()
      req.on('error', (error) => {
        if (req.reusedSocket && (error.code === 'ECONNRESET' || error.code === 'EPIPE')) error.reusedSocket = true
        fail(error)
      })
      req.end(payload)
    })
  }

  /** Throws what the caller must see; answers true for "no daemon answering now". */
  function unavailable (error) {
    if (error instanceof ClTokendError) throw error
    if (error && (error.code === 'EACCES' || error.code === 'EPERM')) {
      throw new ClTokendError(
        `cannot open cl-tokend's socket ${socketPath}: permission denied. ` +
          "This process's user must be in the socket's group ([server] socket_group).",
        'EACCES'
      )
    }
    if (error && UNAVAILABLE.has(error.code)) {
      downUntil = Date.now() + retryMs
      logOnce(`down:${error.code}`, `cl-tokend is not answering on ${socketPath} (${error.code}): ` +
        'js-auth fetches tokens itself until it answers again')
      return true
    }
    throw error
  }

  function refused (res, name) {
    const detail = res.doc?.error?.message ?? `status ${res.status}`
    if (res.status === 403) {
      return new ClTokendError(`cl-tokend does not let this process use credential "${name}": ` +
        "add this process's user or group to the credential's allow list", 'EFORBIDDEN')
    }
    const retry = Number(res.headers['retry-after'])
    return new ClTokendError(`cl-tokend has no token for credential "${name}" now: ${detail}`,
      res.status === 503 || res.status === 429 ? 'EUNAVAILABLE' : 'EDAEMON',
      Number.isFinite(retry) ? retry : undefined)
  }

  /** The credentials this process may use, by the keys js-auth gives them. */
  async function credentials () {
    if (known && Date.now() - known.at < credentialsTtlMs) return known
    if (Date.now() < downUntil) return known
    listing ??= (async () => {
      try {
        const res = await call('GET', '/v1/credentials')
        if (res.status !== 200 || !Array.isArray(res.doc?.credentials)) {
          throw new ClTokendError(`cl-tokend answered ${res.status} to GET /v1/credentials ` +
            '(a daemon older than this storage?)', 'EDAEMON')
        }
        const byKey = new Map()
        const customerKeys = new Set()
        for (const c of res.doc.credentials) {
          const configuration = { clientId: c.client_id, scope: jsAuthScope(c.scope) }
          const key = await getKey(configuration, 'guest')
          const seen = byKey.get(key)
          if (seen === undefined) {
            byKey.set(key, c)
          } else if (seen !== null && (seen.client_id !== c.client_id || jsAuthScope(seen.scope) !== configuration.scope)) {
            // Two identities under one key (a getKey that leaves something out): serving
            // either could hand js-auth another application's token, so neither is served.
            byKey.set(key, null)
            logOnce(`ambiguous:${key}`, `two credentials give the key ${key}: the storage serves neither`)
          }
          customerKeys.add(await getKey(configuration, 'customer'))
        }
        known = { at: Date.now(), byKey, customerKeys }
      } catch (error) {
        unavailable(error)
      } finally {
        listing = null
      }
      return known
    })()
    return await listing
  }

  /** What a key is: a credential the daemon holds for us, a customer's, or something else. */
  async function lookup (key) {
    const list = await credentials()
    const credential = list?.byKey.get(key)
    if (credential) return { kind: 'daemon', credential }
    const customer = list?.customerKeys.has(key) || (getKey === defaultKey && key.startsWith('cl_customer-'))
    return { kind: customer ? 'customer' : 'other', down: list === null }
  }

  function notHeld (where, key) {
    if (!where.down) {
      logOnce(`key:${key}`, `no credential that cl-tokend lets this process use matches the key ${key}: ` +
        'js-auth fetches that token itself')
    }
    return fallback.get(key) ?? null
  }

  return {
    name: options.name ?? 'cl-tokend',

    async getItem (key) {
      const where = await lookup(key)
      if (where.kind === 'customer') return null // never here: see setItem
      if (where.kind !== 'daemon') return notHeld(where, key)
      const { name } = where.credential
      if (Date.now() < downUntil) return fallback.get(key) ?? null // it did not answer a moment ago
      let res
      try {
        res = await call('GET', `/v1/tokens/${encodeURIComponent(name)}?min_ttl=${minTtl}`)
      } catch (error) {
        unavailable(error)
        return fallback.get(key) ?? null
      }
      if (res.status === 404) { // removed by a reload since the list was read
        known = null
        return fallback.get(key) ?? null
      }
      const doc = res.doc
      if (res.status !== 200 || typeof doc?.access_token !== 'string') throw refused(res, name)
      served.set(key, doc.access_token)
      const now = Date.now()
      return {
        accessToken: doc.access_token,
        tokenType: 'bearer',
        scope: doc.scope,
        expiresIn: doc.expires_in,
        expires: new Date(now + doc.expires_in * 1000),
        createdAt: issuedAt(doc.access_token) ?? Math.floor(now / 1000),
        ownerType: 'guest'
      }
    },

    async setItem (key, value) {
      const where = await lookup(key)
      if (where.kind === 'daemon') {
        // The daemon owns that token; while it does not answer, keep js-auth's own so
        // that js-auth does not fetch again at every call meanwhile.
        if (Date.now() < downUntil) fallback.set(key, value)
        return
      }
      if (where.kind === 'customer') {
        // The default key names no customer: one process-wide copy would hand one
        // customer's token to every visitor.
        throw new ClTokendError(`the cl-tokend storage keeps no customer authorization (${key}): ` +
          "give makeSalesChannel a customerStorage of the visitor's own", 'ECUSTOMER')
      }
      fallback.set(key, value)
    },

    async removeItem (key) {
      fallback.delete(key)
      const where = await lookup(key)
      if (where.kind !== 'daemon') return
      const token = served.get(key)
      served.delete(key)
      if (token === undefined) return
      // js-auth removes a token when the API rejected it: tell the daemon, which replaces
      // it once however many processes report it.
      const { name } = where.credential
      let res
      try {
        res = await call('POST', `/v1/tokens/${encodeURIComponent(name)}/invalidate`, { access_token: token })
      } catch (error) {
        unavailable(error)
        return
      }
      if (res.status === 403) throw refused(res, name)
    },

    async dispose () {
      agent.destroy()
      fallback.clear()
      served.clear()
      known = null
    }
  }
}

module.exports = { createClTokendStorage, ClTokendError }
