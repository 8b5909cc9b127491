/** The dashboard's port: the one given, or the app's + 1 (0, any free one, when the app's is 0). */
export function dashboardPort(given: number | string | undefined, appPort: number): number | undefined {
  if (given === undefined || given === '') return appPort === 0 ? 0 : appPort + 1;
  const port = Number(given);
  // Undefined when `given` is not a port number: the caller says so in its own words.
  return Number.isInteger(port) && port >= 0 && port <= 65535 ? port : undefined;
}
