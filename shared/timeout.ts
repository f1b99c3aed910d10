/** The work's value, or undefined once `ms` have passed without it; the timer never outlives the race. */
export function within<T>(work: Promise<T>, ms: number): Promise<T | undefined> {
  // One promise and one timer rather than race() and finally(): every registration's answer waits through this.
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms, undefined);
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
