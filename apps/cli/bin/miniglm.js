#!/usr/bin/env node
// The `miniglm` command. Sources are TypeScript run through tsx: no build step to forget.
import { register } from 'tsx/esm/api';

register();
await import('../src/main.ts');
