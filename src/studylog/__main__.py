from studylog.cli import main

main(prog_name="studylog")
