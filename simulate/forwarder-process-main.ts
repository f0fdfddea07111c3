/**
 * The file forwarder-child.ts forks to start a simulation's forwarder process. (The single
 * executable has no such file: it runs the same function through a hidden command.)
 */
import { runForwarderProcess } from './forwarder-process.js'

runForwarderProcess(process.argv.slice(2))
