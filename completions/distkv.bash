# Completion of 'distkv client code|module|run' (distkv-code); generated.
_distkv_completion() {
    local IFS=$'\n'
    local response

    response=$(env COMP_WORDS="${COMP_WORDS[*]}" COMP_CWORD=$COMP_CWORD _DISTKV_CODE_COMPLETE=bash_complete distkv-code-complete)

    for completion in $response; do
        IFS=',' read type value <<< "$completion"

        if [[ $type == 'dir' ]]; then
            COMPREPLY=()
            compopt -o dirnames
        elif [[ $type == 'file' ]]; then
            COMPREPLY=()
            compopt -o default
        elif [[ $type == 'plain' ]]; then
            COMPREPLY+=($value)
        fi
    done

    return 0
}

_distkv_completion_setup() {
    complete -o nosort -F _distkv_completion distkv
}

_distkv_completion_setup;

