#!/usr/bin/env python3
"""embed_file.py SYMBOL INPUT OUTPUT: writes OUTPUT, a C file defining
`const char SYMBOL[]` (INPUT's bytes, NUL-terminated) and
`const size_t SYMBOL_len` (their count without the NUL)."""
import sys


def main(symbol, src, out):
    data = open(src, 'rb').read()
    lines = ['#include <stddef.h>', '', 'const char %s[] = {' % symbol]
    for i in range(0, len(data), 16):
        lines.append('  ' + ', '.join('%d' % b for b in data[i:i + 16]) + ',')
    lines += ['  0};', 'const size_t %s_len = %d;' % (symbol, len(data)), '']
    open(out, 'w').write('\n'.join(lines))


if __name__ == '__main__':
    main(*sys.argv[1:])
