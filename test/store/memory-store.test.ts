import t from 'tap'
import { MemoryVolume, openMemoryStore } from '../../src/store/index.js'
import { storeConformance } from './conformance.js'

storeConformance(t, 'memory', {
  async make (_t, options) {
    const volume = new MemoryVolume()
    const store = await openMemoryStore(options, volume)
    return { store, reopen: async (o = options) => await openMemoryStore(o, volume) }
  }
})
