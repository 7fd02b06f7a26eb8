/** The value js-auth stores and reads back (its StorageValue, and what getItem adds). */
export interface ClTokendStorageValue {
  accessToken: string
  scope: string
  refreshToken?: string
  tokenType?: 'bearer'
  expiresIn?: number
  expires?: Date
  createdAt?: number
  ownerType?: 'guest' | 'customer'
}

/** js-auth's Storage interface, as this package implements it. */
export interface ClTokendStorage {
  name: string
  getItem: (key: string) => Promise<ClTokendStorageValue | null>
  setItem: (key: string, value: ClTokendStorageValue) => Promise<void>
  removeItem: (key: string) => Promise<void>
  dispose: () => Promise<void>
}

export interface ClTokendStorageOptions {
  /** The daemon's socket. Default: $CL_TOKEND_SOCKET, else /run/cl-tokend/cl-tokend.sock. */
  socketPath?: string
  /** Deadline of every call to the daemon, in ms. Default 5000. */
  timeoutMs?: number
  /** Seconds a token must have left when served; at least 601 (js-auth refreshes under 600). Default 660. */
  minTtl?: number
  /** How long the list of this process's credentials is reused, in ms. Default 60000. */
  credentialsTtlMs?: number
  /** After the daemon did not answer, how long to let js-auth work alone before asking again, in ms. Default 5000. */
  retryMs?: number
  /** The getKey given to makeIntegration / makeSalesChannel, when not js-auth's default. */
  getKey?: (configuration: { clientId: string; scope: string }, type: 'guest' | 'customer') => Promise<string> | string
  /** Where the one-time warnings go (warn()); null for none. Default: console. */
  logger?: { warn: (message: string) => void } | null
  /** The storage's name in js-auth's debug logs. Default "cl-tokend". */
  name?: string
  /** Connections kept to the daemon. Default 8. */
  maxSockets?: number
}

export declare class ClTokendError extends Error {
  /** EACCES, EFORBIDDEN, EUNAVAILABLE, ECUSTOMER or EDAEMON */
  code: string
  /** Seconds, when the daemon said when to come back. */
  retryAfter?: number
}

export declare function createClTokendStorage(options?: ClTokendStorageOptions): ClTokendStorage
