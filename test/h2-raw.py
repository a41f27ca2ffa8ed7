#!/usr/bin/env python3
"""Raw HTTP/2 frames for the tests, with Debian's python3-h2 (hyperframe, hpack): headers
no conforming client sends, and frames in an order no client library allows.

usage: h2-raw.py PORT SCENARIO_JSON
SCENARIO_JSON: {"requests": [{"stream": 1, "headers": [[name, value], ...]}, ...]}
Each request's HEADERS is written as given (END_STREAM set), in order, in one write,
with its stream id as given (a decreasing one included). Prints one JSON object: for
each stream its :status, cf-ray and RST_STREAM code, and the GOAWAY error code, if any.
"""

import json
import socket
import ssl
import sys

from hpack import Decoder, Encoder
from hyperframe.frame import (DataFrame, Frame, GoAwayFrame, HeadersFrame, RstStreamFrame,
                              SettingsFrame, WindowUpdateFrame)

PREFACE = b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'


def main():
    port = int(sys.argv[1])
    scenario = json.loads(sys.argv[2])
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(['h2'])
    raw = socket.create_connection(('127.0.0.1', port), timeout=5)
    sock = ctx.wrap_socket(raw, server_hostname='localhost')
    encoder = Encoder()
    decoder = Decoder()
    out = PREFACE + SettingsFrame(0).serialize()
    for req in scenario['requests']:
        frame = HeadersFrame(req['stream'])
        frame.data = encoder.encode([(n.encode(), v.encode()) for n, v in req['headers']])
        frame.flags.add('END_HEADERS')
        frame.flags.add('END_STREAM')
        out += frame.serialize()
    sock.sendall(out)

    streams = {}
    goaway = None
    buf = b''
    want = {req['stream'] for req in scenario['requests']}
    done = set()
    sock.settimeout(float(scenario.get('wait', 3)))
    try:
        while goaway is None and not want <= done:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
            while len(buf) >= 9:
                frame, length = Frame.parse_frame_header(memoryview(buf[:9]))
                if len(buf) < 9 + length:
                    break
                frame.parse_body(memoryview(buf[9:9 + length]))
                buf = buf[9 + length:]
                entry = streams.setdefault(str(frame.stream_id), {'status': None, 'ray': None, 'reset': None})
                if isinstance(frame, SettingsFrame) and 'ACK' not in frame.flags:
                    sock.sendall(SettingsFrame(0, flags=['ACK']).serialize())
                elif isinstance(frame, HeadersFrame):
                    for name, value in decoder.decode(frame.data):
                        name = name.decode() if isinstance(name, bytes) else name
                        value = value.decode() if isinstance(value, bytes) else value
                        if name == ':status':
                            entry['status'] = int(value)
                        elif name == 'cf-ray':
                            entry['ray'] = value[:16]
                    if 'END_STREAM' in frame.flags:
                        done.add(frame.stream_id)
                elif isinstance(frame, DataFrame):
                    if frame.data:
                        ack = len(frame.data)
                        sock.sendall(WindowUpdateFrame(0, window_increment=ack).serialize()
                                     + WindowUpdateFrame(frame.stream_id, window_increment=ack).serialize())
                    if 'END_STREAM' in frame.flags:
                        done.add(frame.stream_id)
                elif isinstance(frame, RstStreamFrame):
                    entry['reset'] = frame.error_code
                    done.add(frame.stream_id)
                elif isinstance(frame, GoAwayFrame):
                    goaway = frame.error_code
    except (socket.timeout, ConnectionError, ssl.SSLError):
        pass
    streams.pop('0', None)
    print(json.dumps({'streams': streams, 'goaway': goaway}))
    sock.close()


main()
