"""Publish outbox events left unpublished (what the periodic relay task does), once or looping."""

import time

from django.core.management.base import BaseCommand

from pos.streams.relay import relay_unpublished


class Command(BaseCommand):
    help = "Publish committed events whose on-commit publication was lost."

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=float, default=None,
                            help="only events unpublished for this many seconds")
        parser.add_argument("--loop", type=float, default=0,
                            help="repeat every N seconds until interrupted")

    def handle(self, *args, older_than=None, loop=0, **options):
        while True:
            count = relay_unpublished(older_than_s=older_than)
            self.stdout.write(f"published {count} event(s)")
            if not loop:
                return
            time.sleep(loop)
