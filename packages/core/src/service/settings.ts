/**
 * A service setting from the environment (MINIGLM_MAX_*, MINIGLM_QUOTA_*, MINIGLM_SUBMIT_RATE,
 * ...) that is not a value it can take: a UserError, so `miniglm api` and `miniglm worker`
 * print its one line (naming the variable and what it takes) instead of an internal error.
 */
import { UserError } from '@miniglm/data';

export class SettingError extends UserError {}
