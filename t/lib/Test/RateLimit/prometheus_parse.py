#!/usr/bin/python3
# Parses Prometheus text (format 0.0.4) from stdin with the reference
# parser of Debian's python3-prometheus-client, independent of the module,
# and prints one JSON object a line: each family
#   {"family": NAME, "type": TYPE, "help": HELP}
# then each of its samples
#   {"sample": NAME, "labels": {...}, "value": NUMBER}
# A text the parser refuses exits non-zero with its error on stderr.

import json
import sys

from prometheus_client.parser import text_string_to_metric_families


def main():
    text = sys.stdin.read()
    for family in text_string_to_metric_families(text):
        print(json.dumps({"family": family.name, "type": family.type,
                          "help": family.documentation}))
        for s in family.samples:
            print(json.dumps({"sample": s.name, "labels": s.labels,
                              "value": s.value}))


if __name__ == "__main__":
    main()
