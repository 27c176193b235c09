// A JS Protomux 3.12.1 over an in-memory message-level stream, driven by JSON lines on stdin, for
// interop/test_core11_mux_interop.py: what Protomux writes is recorded (whole messages, as
// secret-stream would carry them) and messages from the test are fed to it as the stream's data.
// Channels are hypercore's "hypercore/alpha" channels (its handshake and ten message encodings).
//
// Commands (one JSON object a line), each answered by one line { writes: [hex], events: [...] } once
// Protomux has settled:
//   { cmd: 'open', protocol, id, handshake }   createChannel + open (channels are numbered from 0)
//   { cmd: 'pair', protocol, id, handshake }   pair(): a remote open makes and opens a channel
//   { cmd: 'feed', hex }                        a message from the remote
//   { cmd: 'send', ch, type, value }            channel.messages[type].send(value) (type: sync, ...)
//   { cmd: 'cork' } { cmd: 'uncork' } { cmd: 'close', ch }
// events: { event: 'open', ch, handshake } { event: 'close', ch, remote } { event: 'message', ch,
// type, value } { event: 'destroyed', error } (values as wire_json.js writes them)
const { EventEmitter } = require('events')
const readline = require('readline')
const Protomux = require('protomux')
const { TYPES, toJSON, fromJSON, wire } = require('./wire_json.js')

class RecordingStream extends EventEmitter {
  constructor () {
    super()
    this.userData = null
    this.destroyed = false
    this.written = []
  }

  write (buf) {
    this.written.push(Buffer.from(buf).toString('hex'))
    return true
  }

  pause () {}
  resume () {}
  end () {}

  destroy (err) {
    if (this.destroyed) return
    this.destroyed = true
    events.push({ event: 'destroyed', error: err ? err.message : null })
    this.emit('close')
  }
}

const stream = new RecordingStream()
const mux = new Protomux(stream)
const channels = []
let events = []

function makeChannel (protocol, id, handshake) {
  const n = channels.length
  const channel = mux.createChannel({
    protocol,
    aliases: ['hypercore'],
    id,
    handshake: wire.handshake,
    messages: TYPES.map((type) => ({
      encoding: wire[type],
      onmessage: (value) => events.push({ event: 'message', ch: n, type, value: toJSON(value) })
    })),
    onopen: (hs) => events.push({ event: 'open', ch: n, handshake: toJSON(hs) }),
    onclose: (remote) => events.push({ event: 'close', ch: n, remote })
  })
  if (channel === null) return null
  channels.push(channel)
  channel.open(handshake)
  return n
}

async function run (cmd) {
  const id = cmd.id ? Buffer.from(cmd.id, 'hex') : null
  if (cmd.cmd === 'open') {
    events.push({ event: 'created', ch: makeChannel(cmd.protocol, id, fromJSON(cmd.handshake)) })
  } else if (cmd.cmd === 'pair') {
    mux.pair({ protocol: cmd.protocol, id }, () => {
      events.push({ event: 'created', ch: makeChannel(cmd.protocol, id, fromJSON(cmd.handshake)) })
    })
  } else if (cmd.cmd === 'feed') {
    stream.emit('data', Buffer.from(cmd.hex, 'hex'))
  } else if (cmd.cmd === 'send') {
    channels[cmd.ch].messages[TYPES.indexOf(cmd.type)].send(fromJSON(cmd.value))
  } else if (cmd.cmd === 'cork') {
    mux.cork()
  } else if (cmd.cmd === 'uncork') {
    mux.uncork()
  } else if (cmd.cmd === 'close') {
    channels[cmd.ch].close()
  } else {
    throw new Error('unknown command ' + cmd.cmd)
  }
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve))
}

async function main () {
  const lines = readline.createInterface({ input: process.stdin })
  for await (const line of lines) {
    if (!line.trim()) continue
    try {
      await run(JSON.parse(line))
    } catch (err) {
      events.push({ event: 'error', error: err.message })
    }
    process.stdout.write(JSON.stringify({ writes: stream.written, events }) + '\n')
    stream.written = []
    events = []
  }
}

main()
