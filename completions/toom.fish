function __toom_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __toom_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __toom_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __toom_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __toom_parse_tokens -S
    set -l unparsed_tokens (__toom_tokens -pc)
    switch $unparsed_tokens[1]
    case 'toom'
        __toom_parse_subcommand 0 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'server'
            __toom_parse_subcommand 2 'data-dir=' 'block-seconds=' 'host=' 'relay-rate=' 'fresh' 'sync' 'message-rate=' 'message-burst=' 'tls-cert=' 'tls-key=' 'require-tls' 'store=' 'login-timeout=' 'max-connections=' 'max-unread-bytes=' 'address-failures=' 'address-block-seconds=' 'version' 'h/help'
        case 'client'
            __toom_parse_subcommand 3 'max-upload=' 'transfer-timeout=' 'keep-partial=' 'public-udp-port=' 'live' 'no-live' 'fingerprint=' 'plaintext' 'version' 'h/help'
        case 'admin'
            __toom_parse_subcommand 0 'version' 'h/help'
            switch $unparsed_tokens[1]
            case 'list'
                __toom_parse_subcommand 0 'data-dir=' 'json' 'version' 'h/help'
            case 'kick'
                __toom_parse_subcommand 1 'data-dir=' 'version' 'h/help'
            case 'unblock'
                __toom_parse_subcommand 1 'data-dir=' 'version' 'h/help'
            end
        case 'replay'
            __toom_parse_subcommand 1 'room=+' 'broadcasts' 'user=+' 'since=' 'until=' 'format=' 'follow' 'pace=' 'store=' 'version' 'h/help'
        case 'passwd'
            __toom_parse_subcommand 1 'hash-all' 'data-dir=' 'store=' 'version' 'h/help'
        case 'import'
            __toom_parse_subcommand 1 'store=' 'replace' 'version' 'h/help'
        case 'export'
            __toom_parse_subcommand 1 'store=' 'replace' 'version' 'h/help'
        case 'help'
            __toom_parse_subcommand -r 1 'version'
        end
    end
end

function __toom_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __toom_parse_subcommand -S -a positional_count
    argparse -s r -- $argv
    set -l option_specs $argv[2..]
    set -l is_repeating_positional $_flag_r
    set -el _flag_r
    set -a commands $unparsed_tokens[1]
    set positional_index 0
    while true
        set -e unparsed_tokens[1]
        argparse -sn "$commands" $option_specs -- $unparsed_tokens 2> /dev/null
        set unparsed_tokens $argv
        set positional_index (math $positional_index + 1)
        for non_repeating_flag_or_option in $non_repeating_flags_or_options
            if set -ql "_flag_$(string replace -a - _ -- $non_repeating_flag_or_option)"
                set non_repeating_flags_or_options_absent 1
                break
            end
        end
        test (count $unparsed_tokens) -eq 0 -o \( -z "$is_repeating_positional" -a "$positional_index" -gt "$positional_count" \) && break
    end
end

function __toom_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __toom_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__toom_tokens -p)
    if test -z "$(__toom_tokens -t)"
        set -l index (count (__toom_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'toom' -f
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom" version' -l 'version' -d 'Show the version.'
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'toom' -n '__toom_should_offer_completions_for_positional "toom" -eq 1' -fa 'server' -d 'Run the TOOM server.'
complete -c 'toom' -n '__toom_should_offer_completions_for_positional "toom" -eq 1' -fa 'client' -d 'Log in to a TOOM server and chat.'
complete -c 'toom' -n '__toom_should_offer_completions_for_positional "toom" -eq 1' -fa 'admin' -d 'Ask the running server to list, kick or unblock.'
complete -c 'toom' -n '__toom_should_offer_completions_for_positional "toom" -eq 1' -fa 'replay' -d 'Read the message logs back: broadcasts and rooms merged in time order.'
complete -c 'toom' -n '__toom_should_offer_completions_for_positional "toom" -eq 1' -fa 'passwd' -d 'Set a user\'s password in credentials.txt, as a salted scrypt hash.'
complete -c 'toom' -n '__toom_should_offer_completions_for_positional "toom" -eq 1' -fa 'import' -d 'Move a data directory\'s accounts, rooms and logs into a PostgreSQL store.'
complete -c 'toom' -n '__toom_should_offer_completions_for_positional "toom" -eq 1' -fa 'export' -d 'Write a PostgreSQL store\'s accounts, rooms and logs as a data directory\'s files.'
complete -c 'toom' -n '__toom_should_offer_completions_for_positional "toom" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom server" data-dir' -l 'data-dir' -d 'Directory with credentials.txt and the logs.' -rfka ''
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom server" block-seconds' -l 'block-seconds' -d 'How long a blocked account stays blocked.' -rfka ''
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom server" host' -l 'host' -d 'Address of the interface to listen on, IPv4 or IPv6 (default: every interface, both families). TCP and UDP use the same port.' -rfka ''
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom server" relay-rate' -l 'relay-rate' -d 'Bytes a second the server relays for all file transfers together, when two clients find no direct path (suffixes K, M, G: 10M, 1G; 0 turns the relay off).' -rfka ''
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom server" fresh' -l 'fresh' -d 'Start with empty logs, moving the old ones into a dated folder in the data directory.'
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom server" sync' -l 'sync' -d 'fsync every log write before replying (survives power loss; concurrent writers share one fsync).'
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom server" message-rate' -l 'message-rate' -d 'Messages (BCM, SRM, SRB) a second one user may send once the burst is spent; faster senders are slowed down, never refused (0: no limit).' -rfka ''
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom server" message-burst' -l 'message-burst' -d 'Messages one user may send at once before --message-rate applies.' -rfka ''
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom server" tls-cert' -l 'tls-cert' -d 'TLS certificate chain (PEM) to present instead of tls-cert.pem in the data directory; needs --tls-key.' -rfka ''
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom server" tls-key' -l 'tls-key' -d 'Private key (PEM) of --tls-cert.' -rfka ''
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom server" require-tls' -l 'require-tls' -d 'Refuse plaintext connections (original-protocol clients, toom client --plaintext) with a one-line error.'
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom server" store' -l 'store' -d 'The PostgreSQL database (also read from TOOM_STORE; the password may come from PGPASSWORD instead of the URL).' -rfka ''
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom server" login-timeout' -l 'login-timeout' -d 'Seconds a connection has to log in before it is closed.' -rfka ''
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom server" max-connections' -l 'max-connections' -d 'Open connections at most; more are refused with a message.' -rfka ''
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom server" max-unread-bytes' -l 'max-unread-bytes' -d 'Reply bytes a client may leave unread before it is disconnected.' -rfka ''
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom server" address-failures' -l 'address-failures' -d 'Failed logins one address may make per minute, across accounts, before it is refused (0: no limit).' -rfka ''
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom server" address-block-seconds' -l 'address-block-seconds' -d 'How long an address stays refused after too many failed logins.' -rfka ''
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom server" version' -l 'version' -d 'Show the version.'
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom server" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom client" max-upload' -l 'max-upload' -d 'Refuse incoming files larger than this many bytes (suffixes K, M, G, T: 10M, 2G).' -rfka ''
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom client" transfer-timeout' -l 'transfer-timeout' -d 'Seconds a file transfer waits for the other side before it fails.' -rfka ''
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom client" keep-partial' -l 'keep-partial' -d 'Hours an interrupted incoming transfer\'s partial file is kept for a resume; older ones are removed when the client starts.' -rfka ''
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom client" public-udp-port' -l 'public-udp-port' -d 'UDP port other users send files to, when a port forward or relay in front of this client maps it to udp_port (the port is then not registered with the server).' -rfka ''
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom client" live' -l 'live' -d 'Print what others say as it arrives (default: on when standard input is a terminal, off for a pipe).'
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom client" no-live' -l 'no-live' -d 'Print what others say as it arrives (default: on when standard input is a terminal, off for a pipe).'
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom client" fingerprint' -l 'fingerprint' -d 'Accept only the server certificate with this fingerprint, as the server prints it on start, instead of ~/.toom/known_servers.' -rfka ''
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom client" plaintext' -l 'plaintext' -d 'Speak the original protocol without TLS: the password and messages cross the network in the clear.'
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom client" version' -l 'version' -d 'Show the version.'
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom client" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom admin" version' -l 'version' -d 'Show the version.'
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom admin" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'toom' -n '__toom_should_offer_completions_for_positional "toom admin" -eq 1' -fa 'list' -d 'Show the users online (address, UDP port, since when), the rooms and the blocked accounts.'
complete -c 'toom' -n '__toom_should_offer_completions_for_positional "toom admin" -eq 1' -fa 'kick' -d 'Disconnect a user; their client is told.'
complete -c 'toom' -n '__toom_should_offer_completions_for_positional "toom admin" -eq 1' -fa 'unblock' -d 'Lift a login block now.'
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom admin list" data-dir' -l 'data-dir' -d 'The server\'s data directory.' -rfka ''
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom admin list" json' -l 'json' -d 'Write one JSON object: users, rooms, blocked.'
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom admin list" version' -l 'version' -d 'Show the version.'
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom admin list" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom admin kick" data-dir' -l 'data-dir' -d 'The server\'s data directory.' -rfka ''
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom admin kick" version' -l 'version' -d 'Show the version.'
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom admin kick" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom admin unblock" data-dir' -l 'data-dir' -d 'The server\'s data directory.' -rfka ''
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom admin unblock" version' -l 'version' -d 'Show the version.'
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom admin unblock" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom replay"' -l 'room' -d 'Only this room (repeatable).' -rfka ''
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom replay" broadcasts' -l 'broadcasts' -d 'Only broadcasts (with --room: broadcasts and those rooms).'
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom replay"' -l 'user' -d 'Only messages by this user (repeatable).' -rfka ''
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom replay" since' -l 'since' -d 'Only messages at or after this time.' -rfka ''
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom replay" until' -l 'until' -d 'Only messages at or before this time.' -rfka ''
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom replay" format' -l 'format' -d 'Output format: text, json (one object per line) or csv (RFC 4180).' -rfka 'text json csv'
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom replay" follow' -l 'follow' -d 'Keep printing messages as the server appends them, and from new rooms.'
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom replay" pace' -l 'pace' -d 'Replay with the original gaps between messages divided by N.' -rfka ''
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom replay" store' -l 'store' -d 'Read a PostgreSQL store instead of a directory (the password may come from PGPASSWORD).' -rfka ''
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom replay" version' -l 'version' -d 'Show the version.'
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom replay" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom passwd" hash-all' -l 'hash-all' -d 'Hash every plaintext password in credentials.txt instead of setting one.'
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom passwd" data-dir' -l 'data-dir' -d 'Directory with credentials.txt.' -rfka ''
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom passwd" store' -l 'store' -d 'The PostgreSQL database (also read from TOOM_STORE; the password may come from PGPASSWORD instead of the URL).' -rfka ''
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom passwd" version' -l 'version' -d 'Show the version.'
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom passwd" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom import" store' -l 'store' -d 'The PostgreSQL database (also read from TOOM_STORE; the password may come from PGPASSWORD instead of the URL).' -rfka ''
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom import" replace' -l 'replace' -d 'Empty a database that is not empty first (its accounts, rooms and messages are lost).'
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom import" version' -l 'version' -d 'Show the version.'
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom import" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom export" store' -l 'store' -d 'The PostgreSQL database (also read from TOOM_STORE; the password may come from PGPASSWORD instead of the URL).' -rfka ''
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom export" replace' -l 'replace' -d 'Overwrite the files a directory already holds.'
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom export" version' -l 'version' -d 'Show the version.'
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom export" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'toom' -n '__toom_should_offer_completions_for_flags_or_options "toom help" version' -l 'version' -d 'Show the version.'
