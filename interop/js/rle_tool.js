// Prints bitfield-rle encodings (hex) of the hex buffers listed in a JSON file.
'use strict'
const fs = require('fs')
const rle = require('bitfield-rle')
const cases = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
process.stdout.write(JSON.stringify(cases.map((h) => rle.encode(Buffer.from(h, 'hex')).toString('hex'))) + '\n')
