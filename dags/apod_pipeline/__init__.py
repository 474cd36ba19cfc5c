"""One definition of the APOD pipeline's steps, rendered to DockerOperator and to
KubernetesPodOperator. The DAG files next to this package only pick a renderer.
"""
