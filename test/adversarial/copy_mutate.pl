#!/usr/bin/perl
# COPY BINARY mutants of a table (id int4, s userseq, raw bytea) for test/t/adversarial.sh.
#   copy_mutate.pl good.bin outdir seed n_field n_file
# Field mutants (field_N.bin): one tuple whose s field is mutated (bit and byte flips,
# truncations, overwritten count / flag / length words, trailing junk) and whose raw field holds
# the same mutated bytes, so a tuple that loads must satisfy userseq_send(s) = raw.
# File mutants (file_N.bin): the whole good file with a bit flipped, a word overwritten or a
# truncation anywhere (header, field lengths, trailer); a tuple that loads must round-trip as text.
use strict;
use warnings;

my ($good, $out, $seed, $n_field, $n_file) = @ARGV;
srand($seed);
open(my $fh, '<:raw', $good) or die "$good: $!";
my $all = do { local $/; <$fh> };
close $fh;

# header: 11-byte signature, int32 flags, int32 extension length, extension
my $sig = "PGCOPY\n\377\r\n\0";
substr($all, 0, 11) eq $sig or die "not a COPY BINARY file";
my $extlen = unpack('N', substr($all, 15, 4));
my $hdr = substr($all, 0, 19 + $extlen);
my $pos = 19 + $extlen;
my @tuples;
while (1) {
	my $nf = unpack('s>', substr($all, $pos, 2));
	$pos += 2;
	last if $nf == -1;
	my @f;
	for (1 .. $nf) {
		my $len = unpack('l>', substr($all, $pos, 4));
		$pos += 4;
		push @f, $len < 0 ? undef : substr($all, $pos, $len);
		$pos += $len if $len > 0;
	}
	push @tuples, \@f;
}
@tuples or die "no tuples";

my @vals = (0, 1, 2, 3, 255, 256, 65535, 65536, 1000000, 1000001, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF);
sub field { defined $_[0] ? pack('l>', length $_[0]) . $_[0] : pack('l>', -1) }
sub put_file {
	my ($name, $bytes) = @_;
	open(my $o, '>:raw', "$out/$name") or die "$out/$name: $!";
	print $o $bytes;
	close $o;
}

for my $j (1 .. $n_field) {
	my $t = $tuples[int(rand(@tuples))];
	my $f = $t->[1];
	my $len = length $f;
	my $kind = $j % 6;
	if ($kind == 0) {			# one bit
		my $p = int(rand($len));
		substr($f, $p, 1) = chr(ord(substr($f, $p, 1)) ^ (1 << int(rand(8))));
	} elsif ($kind == 1) {		# one byte
		substr($f, int(rand($len)), 1) = chr(int(rand(256)));
	} elsif ($kind == 2) {		# truncation
		$f = substr($f, 0, int(rand($len)));
	} elsif ($kind == 3) {		# header words: n, n_labels + flags, reserved
		my $p = (0, 4, 6, 8)[int(rand(4))];
		my $v = $vals[int(rand(@vals))];
		substr($f, $p, $p == 4 || $p == 6 ? 2 : 4) = $p == 4 || $p == 6 ? pack('n', $v & 0xFFFF) : pack('N', $v);
	} elsif ($kind == 4) {		# a word anywhere after the header (label lengths, items, times)
		my $p = 12 + int(rand($len > 16 ? $len - 16 : 1));
		substr($f, $p, 4) = pack('N', $vals[int(rand(@vals))]) if $p + 4 <= $len;
	} else {					# trailing junk
		$f .= join('', map { chr(int(rand(256))) } 1 .. 1 + int(rand(9)));
	}
	put_file("field_$j.bin", $hdr . pack('s>', 3) . field(pack('l>', $j)) . field($f) . field($f) . pack('s>', -1));
}

my $len = length $all;
for my $j (1 .. $n_file) {
	my $b = $all;
	my $kind = $j % 3;
	if ($kind == 0) {
		my $p = int(rand($len));
		substr($b, $p, 1) = chr(ord(substr($b, $p, 1)) ^ (1 << int(rand(8))));
	} elsif ($kind == 1) {
		my $p = int(rand($len - 4));
		substr($b, $p, 4) = pack('N', $vals[int(rand(@vals))]);
	} else {
		$b = substr($b, 0, int(rand($len)));
	}
	put_file("file_$j.bin", $b);
}
