"""What evlog asks of the operating system, in one place: the kernel's word on what changed on
disk (changes.py: inotify), write-back and thread priority (writeback.py), and imports put off
until first use (lazy.py). Every other package may use these; they use none of evlog's."""
