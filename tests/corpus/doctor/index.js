#!/usr/bin/env node
'use strict';
import pkg, { a as b } from '@prisma/client';
export * from './lib/index.js';
const express = require('express');
const re = /require\('x'\)[/]/g, t = `import('${'y'}')`;
try { require('pg-native'); } catch { /* optional */ }
const lazy = () => import('lodash/fp');
module.exports = { ...require('.prisma/client/default'), x: 1 / 2 };
