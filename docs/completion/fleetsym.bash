# bash completion for fleetsymd, fleetsym-agent, fleetsym-upload and fleetsym-symbolize:
# their long options, read from each program's --help by bash-completion's _longopt (file names
# after the options that take one). Installed once per program name, so that bash-completion
# loads it on demand for any of them.
complete -F _longopt fleetsymd fleetsym-agent fleetsym-upload fleetsym-symbolize
