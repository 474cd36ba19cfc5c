"""One definition of the APOD pipeline's steps (steps.py, standard library only), rendered
to DockerOperator, to KubernetesPodOperator and to `docker run` by hand. The DAG files
next to this package only pick a renderer.
"""
