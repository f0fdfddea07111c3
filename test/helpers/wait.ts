// The bounded waits live in bench/lib (benches cannot import test/); tests import them from here.
export { freePort, waitFor } from '../../bench/lib/wait.js'
