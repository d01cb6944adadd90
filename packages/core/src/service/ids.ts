/** Ids of runs, stages, checkpoints and files are uuid v4 text made by the client. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A string that is not a uuid is simply "not found": no database round trip, no cast error. */
export const isUuid = (s: string): boolean => UUID.test(s);
