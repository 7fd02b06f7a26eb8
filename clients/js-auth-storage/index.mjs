// The ES module entry: the same code as index.cjs (one implementation, loaded from both).
import storage from './index.cjs'

export const { createClTokendStorage, ClTokendError } = storage
