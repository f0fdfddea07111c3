/** Runs async tasks one at a time, in call order; a failed task does not stop the lane. */
export class SerialLane {
  private tail: Promise<unknown> = Promise.resolve()

  async run<T> (task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task, task)
    this.tail = result.catch(() => {})
    return await result
  }

  /** Resolves once every task queued so far has finished. */
  async idle (): Promise<void> {
    await this.tail
  }
}
