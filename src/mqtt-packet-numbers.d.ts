// mqtt-packet ships types for its entry point only; this is the one internal module
// mqtt-length-cache.ts reaches into (mqtt-packet 9.x, numbers.js).
declare module 'mqtt-packet/numbers.js' {
  const numbers: { genBufVariableByteInt: (num: number) => Buffer }
  export default numbers
}
